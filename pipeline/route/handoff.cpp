// The handoff state machine and its stored form (handoff.h).
#include "pipeline/route/handoff.h"

#include <algorithm>
#include <cstdint>

namespace omnibus::pipeline::route {

std::string_view to_string(Owner o) { return o == Owner::human ? "human" : "ai"; }

std::string_view to_string(HandoffReason r) {
    switch (r) {
        case HandoffReason::none: return "none";
        case HandoffReason::human_reply: return "human_reply";
        case HandoffReason::taken_over: return "taken_over";
        case HandoffReason::cannot_help: return "cannot_help";
        case HandoffReason::released: return "released";
        case HandoffReason::idle: return "idle";
        case HandoffReason::new_conversation: return "new_conversation";
    }
    return "none";
}

namespace {

bool idle_expired(const HandoffState& s, Timestamp now, const HandoffPolicy& policy) {
    if (s.owner != Owner::human || policy.release_after_idle.count() <= 0) return false;
    // Counted from the last human action; an escalation with no human action
    // yet counts from the escalation.
    // Stored times are whatever the store held: compare without overflowing.
    const std::int64_t from = std::max(s.last_human_action, s.since).time_since_epoch().count();
    std::int64_t idle = 0;
    if (__builtin_sub_overflow(now.time_since_epoch().count(), from, &idle)) return from < 0;
    return idle >= policy.release_after_idle.count();
}

// A human-held conversation back to the AI for `reason`; the AI's turn count starts again.
HandoffState back_to_ai(HandoffState s, HandoffReason reason, Timestamp at) {
    if (s.owner == Owner::human) {
        s.owner = Owner::ai;
        s.reason = reason;
        s.since = at;
        s.agent.reset();
    }
    s.ai_turns = 0;
    return s;
}

HandoffState to_human(HandoffState s, HandoffReason reason, const HandoffEvent& e) {
    if (s.owner != Owner::human) s.since = e.at;
    s.owner = Owner::human;
    s.reason = reason;
    if (e.agent) s.agent = e.agent;
    return s;
}

}  // namespace

Owner effective_owner(const HandoffState& s, Timestamp now, const HandoffPolicy& policy) {
    return idle_expired(s, now, policy) ? Owner::ai : s.owner;
}

HandoffState apply(HandoffState s, const HandoffEvent& e, const HandoffPolicy& policy) {
    using Kind = HandoffEvent::Kind;
    // A human who has been away too long has released the conversation,
    // whatever this event is; a human reply or take-over takes it again below.
    if (idle_expired(s, e.at, policy)) {
        s.owner = Owner::ai;
        s.reason = HandoffReason::idle;
        s.since = e.at;
        s.agent.reset();
        s.ai_turns = 0;
    }
    switch (e.kind) {
        case Kind::customer_message:
            break;
        case Kind::ai_reply:
            if (e.resolved) {
                s.ai_turns = 0;
            } else if (s.ai_turns < UINT32_MAX) {
                ++s.ai_turns;
            }
            if (e.cannot_help) s = to_human(std::move(s), HandoffReason::cannot_help, e);
            break;
        case Kind::human_reply:
            s = to_human(std::move(s), HandoffReason::human_reply, e);
            s.last_human_action = std::max(s.last_human_action, e.at);
            s.ai_turns = 0;
            break;
        case Kind::take_over:
            s = to_human(std::move(s), HandoffReason::taken_over, e);
            s.last_human_action = std::max(s.last_human_action, e.at);
            s.ai_turns = 0;
            break;
        case Kind::release:
            s = back_to_ai(std::move(s), HandoffReason::released, e.at);
            break;
        case Kind::resolved:
            s.ai_turns = 0;
            break;
        case Kind::new_conversation:
            // A hand-off holds one conversation; the next one is the rules' again.
            s = back_to_ai(std::move(s), HandoffReason::new_conversation, e.at);
            break;
    }
    return s;
}

// ---- storage ------------------------------------------------------------------

namespace {

constexpr std::size_t kFixedBytes = 1 + 1 + 1 + 8 + 8 + 4 + 1;

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint64_t get_u64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
std::uint32_t get_u32(const unsigned char* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

std::string_view cut_utf8(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    return s.substr(0, cut);
}

}  // namespace

std::string encode(const HandoffState& s) {
    const std::string_view agent = s.agent ? cut_utf8(*s.agent, kMaxAgentBytes) : std::string_view();
    std::string out;
    out.reserve(kFixedBytes + agent.size());
    out.push_back(static_cast<char>(kHandoffVersion));
    out.push_back(static_cast<char>(s.owner));
    out.push_back(static_cast<char>(s.reason));
    put_u64(out, static_cast<std::uint64_t>(s.since.time_since_epoch().count()));
    put_u64(out, static_cast<std::uint64_t>(s.last_human_action.time_since_epoch().count()));
    put_u32(out, s.ai_turns);
    out.push_back(static_cast<char>(agent.size()));
    out.append(agent);
    return out;
}

std::optional<HandoffState> decode_handoff(std::string_view bytes) {
    if (bytes.size() < kFixedBytes) return std::nullopt;
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    if (p[0] != kHandoffVersion) return std::nullopt;
    if (p[1] > static_cast<unsigned char>(Owner::human)) return std::nullopt;
    if (p[2] > static_cast<unsigned char>(HandoffReason::new_conversation)) return std::nullopt;
    const std::size_t agent_len = p[kFixedBytes - 1];
    if (bytes.size() != kFixedBytes + agent_len) return std::nullopt;
    // Only the combinations apply() produces: a human owner for a human
    // reason, an agent only while a human holds the conversation.
    const bool human_reason = p[2] == static_cast<unsigned char>(HandoffReason::human_reply) ||
                              p[2] == static_cast<unsigned char>(HandoffReason::taken_over) ||
                              p[2] == static_cast<unsigned char>(HandoffReason::cannot_help);
    if ((p[1] == static_cast<unsigned char>(Owner::human)) != human_reason) return std::nullopt;
    if (agent_len > 0 && !human_reason) return std::nullopt;
    HandoffState s;
    s.owner = static_cast<Owner>(p[1]);
    s.reason = static_cast<HandoffReason>(p[2]);
    s.since = Timestamp(std::chrono::milliseconds(static_cast<std::int64_t>(get_u64(p + 3))));
    s.last_human_action = Timestamp(std::chrono::milliseconds(static_cast<std::int64_t>(get_u64(p + 11))));
    s.ai_turns = get_u32(p + 19);
    if (agent_len > 0) s.agent.emplace(bytes.substr(kFixedBytes, agent_len));
    return s;
}

}  // namespace omnibus::pipeline::route
