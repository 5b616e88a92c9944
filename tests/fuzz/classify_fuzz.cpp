// libFuzzer target: arbitrary bytes as a customer message (the built-in rules), and, after a
// first byte of '\x01', as a classification rules file whose classifier then reads a message.
// It must never crash or let an exception out, and every result must be in range.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pipeline/classify/classifier.h"

using namespace omnibus::pipeline::classify;

namespace {

void check(const Classification& c) {
    if (c.sentiment.score < -1 || c.sentiment.score > 1) std::abort();
    if (c.language_confidence < 0 || c.language_confidence > 1) std::abort();
    if (c.intent.name.empty() || c.entities.size() > 16) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    if (!bytes.empty() && bytes[0] == '\x01') {
        LoadResult r = Classifier::load_string(bytes.substr(1), "fuzz.yaml");
        if (r.ok() != r.errors.empty()) std::abort();
        (void)r.report();
        if (r.ok()) check(r.classifier->classify({"Where is my order #12345? 我的订单 quiero un reembolso", {}, {}, {}}));
        return 0;
    }
    static const auto builtin = Classifier::builtin();
    check(builtin->classify({bytes, {}, "es", "en"}));
    check(builtin->classify({bytes.substr(0, bytes.size() / 2), bytes.substr(bytes.size() / 2), {}, {}}));
    return 0;
}
