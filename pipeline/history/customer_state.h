// CustomerState: what the conversation stage keeps per customer besides the history entries,
// under "s/<customer>" in the history store (and so on its changelog): the conversation
// routing last saw, the customer's last detected language (a short message falls back to
// it), and who owns the conversation (route/handoff.h).
//
// Value: u8 version (1) | u8 conversation length | conversation | u8 language length |
// language | handoff value (route::encode). decode_customer_state() is strict: another
// version, a short value or a bad handoff value is refused (nullopt), never guessed at; the
// stage then starts from a fresh state (the history itself is untouched).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pipeline/route/handoff.h"

namespace omnibus::pipeline::history {

struct CustomerState {
    std::string conversation;  // envelope ids: at most 255 bytes
    std::string language;      // ISO 639-1, empty when not known yet
    route::HandoffState handoff;
    friend bool operator==(const CustomerState&, const CustomerState&) = default;
};

std::string encode(const CustomerState& s);
std::optional<CustomerState> decode_customer_state(std::string_view bytes);

}  // namespace omnibus::pipeline::history
