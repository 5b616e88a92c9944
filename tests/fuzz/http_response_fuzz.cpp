// libFuzzer target for what a provider's HTTP answer feeds omnibus besides the
// body: the header lines (ResponseHead) and Retry-After values.
//
// Beyond "never crashes": ResponseHead never keeps more than its byte limit,
// names come out lower-case without separators, values without surrounding
// blanks; a parsed Retry-After is within [0, max_retry_after]. The corpus in
// tests/fuzz/corpus/http is replayed by the plain test "fuzz_replay: http corpus".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "http/response_head.h"
#include "http/retry_after.h"

namespace {

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "http_response_fuzz: invariant broken: %s\n", what);
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace omnibus::http;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'764'000'000));

    // Every line (split at LF) as a header line, with a small limit.
    constexpr std::size_t kLimit = 512;
    ResponseHead head(kLimit);
    std::size_t fed = 0;
    std::string_view rest = in;
    while (!rest.empty()) {
        const std::size_t nl = rest.find('\n');
        const std::string_view line = rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
        rest.remove_prefix(line.size());
        if (head.feed(line)) fed += line.size();
    }
    std::size_t kept = 0;
    for (const auto& [name, value] : head.fields()) {
        kept += name.size() + value.size();
        for (const char c : name) require(!(c >= 'A' && c <= 'Z') && c != ':' && c != '\r' && c != '\n', "name");
        require(value.empty() || (value.front() != ' ' && value.back() != ' ' && value.front() != '\t' &&
                                  value.back() != '\t'),
                "value trimmed");
    }
    require(kept <= kLimit && fed <= kLimit, "byte limit");

    // The whole input as a Retry-After value, and each header value too.
    if (auto s = parse_retry_after(in, now)) require(s->count() >= 0 && *s <= max_retry_after, "retry-after range");
    for (const auto& [name, value] : head.fields())
        if (auto s = parse_retry_after(value, now)) require(s->count() >= 0 && *s <= max_retry_after, "range");
    return 0;
}
