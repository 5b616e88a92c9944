// Who handles a conversation, AI or human, as a pure state machine over the
// conversation's events; the conversation stage stores the state per
// conversation (history store) and hands it to Router::route().
//
// Threads: plain values and pure functions; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "envelope/timestamp.h"

namespace omnibus::pipeline::route {

using envelope::Timestamp;

enum class Owner : std::uint8_t { ai, human };
std::string_view to_string(Owner o);

// Why the current owner holds the conversation.
enum class HandoffReason : std::uint8_t {
    none,         // AI, from the start
    human_reply,  // a human-authored reply
    taken_over,   // an explicit take-over event
    cannot_help,  // an AI reply flagged "cannot help" escalated it
    released,     // a human released it back to the AI
    idle,         // the owning human had not acted for HandoffPolicy::release_after_idle
    new_conversation,  // the conversation the human held closed; a new one starts with the rules
};
std::string_view to_string(HandoffReason r);

struct HandoffState {
    Owner owner = Owner::ai;
    HandoffReason reason = HandoffReason::none;
    std::optional<std::string> agent;  // the human who holds it ("agent:<id>"), when known
    Timestamp since{};                 // when the owner last changed
    Timestamp last_human_action{};     // last human reply or take-over (idle expiry counts from here)
    std::uint32_t ai_turns = 0;        // AI replies since the last resolution or human reply

    friend bool operator==(const HandoffState&, const HandoffState&) = default;
};

struct HandoffPolicy {
    // A human-owned conversation goes back to the AI when its human has not
    // replied (or taken it over again) for this long. Zero: never by itself.
    std::chrono::milliseconds release_after_idle = std::chrono::hours(4);
};

// What happened in the conversation, as the stage reads it from
// omnibus.inbound (customer messages) and omnibus.replies (everything else).
struct HandoffEvent {
    enum class Kind : std::uint8_t {
        customer_message,  // an inbound message: only idle expiry can change the owner
        ai_reply,          // flags below: cannot_help escalates, resolved resets the turn count
        human_reply,       // authored by an agent: human-owned, turn count reset
        take_over,         // explicit take-over by an agent
        release,           // the human hands the conversation back to the AI
        resolved,          // the conversation was marked resolved: turn count reset
        new_conversation,  // the customer's message opens a new conversation: back to the AI, count reset
    };
    Kind kind = Kind::customer_message;
    Timestamp at{};
    std::optional<std::string> agent;  // human_reply / take_over / release
    bool cannot_help = false;          // ai_reply
    bool resolved = false;             // ai_reply
};

// The owner at `now`: a human-owned state past its idle time counts as AI-owned.
Owner effective_owner(const HandoffState& s, Timestamp now, const HandoffPolicy& policy);

// The state after `event`. Events older than the state's last change still
// apply (replies are not ordered with inbound messages), but idle expiry is
// judged at the event's own time.
HandoffState apply(HandoffState s, const HandoffEvent& event, const HandoffPolicy& policy);

// ---- storage ------------------------------------------------------------------
// Compact binary value for the history store:
//   u8 version (1) | u8 owner | u8 reason | i64le since_ms | i64le last_human_ms |
//   u32le ai_turns | u8 agent_len (0 = none, agent 1..255 bytes) | agent bytes
// decode_handoff() is strict: another version, an out-of-range enum, a short
// value or trailing bytes are refused (nullopt), never guessed at. An agent id
// longer than kMaxAgentBytes is cut (on a UTF-8 boundary) when encoded.
inline constexpr std::uint8_t kHandoffVersion = 1;
inline constexpr std::size_t kMaxAgentBytes = 255;

std::string encode(const HandoffState& s);
std::optional<HandoffState> decode_handoff(std::string_view bytes);

}  // namespace omnibus::pipeline::route
