// libFuzzer target for the envelope decoder (hostile Kafka records).
//
// Input: optional header lines "name: value" then an empty line, then the
// body. Without a header block the body is decoded alone and, when it is a
// valid envelope, again as a record with the headers encode() would give it.
// Beyond "never crashes" it checks that whatever decodes re-encodes to the
// same envelope, and takes a customer id spliced into its body (with_customer_id). unit_envelope replays tests/fuzz/corpus/envelope/ through
// this same function, so the corpus is a regression test under g++ too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "envelope/envelope.h"

namespace {

using namespace omnibus;
using namespace omnibus::envelope;

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "envelope_fuzz: invariant broken: %s\n", what);
        std::abort();
    }
}

void check_round_trip(const Envelope& env) {
    require(validate(env).ok(), "a decoded envelope validates");
    const kafka::Record rec = encode(env, "key");
    auto again = decode(rec);
    if (!again) std::fprintf(stderr, "envelope_fuzz: %s\n", again.error().to_string().c_str());
    require(again.ok(), "an encoded envelope decodes");
    require(*again == env, "decode(encode(e)) == e");
    require(encode_body(*again) == rec.value, "encoding is deterministic");
}

kafka::Record split(std::string_view in, bool& has_headers) {
    kafka::Record r;
    const std::size_t blank = in.find("\n\n");
    has_headers = blank != std::string_view::npos;
    if (!has_headers) {
        r.value = std::string(in);
        return r;
    }
    std::string_view head = in.substr(0, blank);
    r.value = std::string(in.substr(blank + 2));
    while (!head.empty()) {
        const std::size_t nl = head.find('\n');
        const std::string_view line = head.substr(0, nl);
        head = nl == std::string_view::npos ? std::string_view{} : head.substr(nl + 1);
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string_view value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        r.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
    }
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    bool has_headers = false;
    kafka::Record record = split(in, has_headers);

    auto body = decode_body(record.value);
    if (body) {
        check_round_trip(*body);
        if (!has_headers) record.headers = encode(*body, "").headers;
        // The resolve stage's splice: where it applies (else the stage encodes the envelope),
        // the received body plus a customer id decodes as the envelope with that id.
        auto spliced = with_customer_id(record.value, "0190b3c4-7e1a-7b2c-9d3e-4f5a6b7c8d9e");
        require(!spliced || !body->customer_id, "a body naming a customer is not spliced");
        if (spliced) {
            auto with = decode_body(*spliced);
            require(with.ok(), "a spliced body decodes");
            Envelope expected = *body;
            expected.customer_id = "0190b3c4-7e1a-7b2c-9d3e-4f5a6b7c8d9e";
            require(*with == expected, "a spliced body is the envelope with its customer");
        }
    } else {
        require(!body.error().field.empty() && !body.error().message.empty(), "an error names field and problem");
    }

    auto full = decode(record);
    if (full) {
        require(body.ok(), "a record decodes only if its body does");
        require(*full == *body, "record and body decode alike");
    }

    // The helpers the codec relies on, on arbitrary bytes.
    std::string fixed;
    json::append_valid_utf8(record.value, fixed);
    require(json::is_valid_utf8(fixed), "append_valid_utf8 output is valid UTF-8");
    require(json::is_valid_utf8(json::excerpt(record.value)), "excerpt output is valid UTF-8");
    if (const auto t = parse_rfc3339(record.value))
        require(parse_rfc3339(format_rfc3339(*t)) == t, "timestamps round-trip");
    json::ParseError pe;
    if (const auto raw = json::RawJson::parse(record.value, json::Limits{1 << 20, 16}, &pe))
        require(json::RawJson::parse(raw->text()) == raw, "RawJson is canonical");
    return 0;
}
