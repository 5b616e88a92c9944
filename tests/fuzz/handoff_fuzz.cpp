// libFuzzer target: arbitrary bytes as a stored handoff state (decode_handoff),
// then events applied to it. Decoding must never crash; what decodes must
// re-encode to the same bytes; applying events to any decoded state (hostile
// times included) must not overflow or crash and must stay decodable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pipeline/route/handoff.h"

using namespace omnibus::pipeline::route;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto s = decode_handoff(bytes);
    if (!s) return 0;
    if (encode(*s) != bytes) std::abort();
    const HandoffPolicy policy{std::chrono::hours(4)};
    const Timestamp times[] = {s->since, s->last_human_action, Timestamp(std::chrono::milliseconds(INT64_MAX)),
                               Timestamp(std::chrono::milliseconds(INT64_MIN)), Timestamp{}};
    for (const Timestamp at : times) {
        (void)effective_owner(*s, at, policy);
        for (int k = 0; k <= static_cast<int>(HandoffEvent::Kind::new_conversation); ++k) {
            HandoffEvent e{static_cast<HandoffEvent::Kind>(k), at, std::string("agent:x"), k % 2 == 0, k % 3 == 0};
            const HandoffState next = apply(*s, e, policy);
            if (!decode_handoff(encode(next))) std::abort();
        }
    }
    return 0;
}
