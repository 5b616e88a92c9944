// The handoff state machine (take over, human reply, release, idle expiry,
// cannot-help escalation, AI turn counting) and its stored form.
#include <catch2/catch.hpp>

#include <random>

#include "pipeline/route/handoff.h"

using namespace omnibus::pipeline::route;
using Kind = HandoffEvent::Kind;
using namespace std::chrono_literals;

namespace {

const Timestamp t0{std::chrono::milliseconds(1'780'000'000'000)};
const HandoffPolicy policy{4h};

HandoffEvent ev(Kind k, std::chrono::milliseconds after, std::optional<std::string> agent = std::nullopt) {
    return HandoffEvent{k, t0 + after, std::move(agent), false, false};
}
HandoffEvent ai(std::chrono::milliseconds after, bool cannot_help = false, bool resolved = false) {
    return HandoffEvent{Kind::ai_reply, t0 + after, std::nullopt, cannot_help, resolved};
}

}  // namespace

TEST_CASE("AI turns count until resolution or a human reply", "[handoff]") {
    HandoffState s;
    s = apply(s, ai(1min), policy);
    s = apply(s, ev(Kind::customer_message, 2min), policy);
    s = apply(s, ai(3min), policy);
    CHECK(s.ai_turns == 2);
    CHECK(s.owner == Owner::ai);
    s = apply(s, ai(4min, false, true), policy);
    CHECK(s.ai_turns == 0);
    s = apply(s, ai(5min), policy);
    s = apply(s, ev(Kind::resolved, 6min), policy);
    CHECK(s.ai_turns == 0);
    s = apply(s, ai(7min), policy);
    s = apply(s, ev(Kind::human_reply, 8min, "agent:1"), policy);
    CHECK(s.ai_turns == 0);
}

TEST_CASE("a human reply or a take-over makes the conversation human-owned until released", "[handoff]") {
    for (Kind k : {Kind::human_reply, Kind::take_over}) {
        HandoffState s = apply(HandoffState{}, ev(k, 0ms, "agent:42"), policy);
        CHECK(s.owner == Owner::human);
        CHECK(s.reason == (k == Kind::human_reply ? HandoffReason::human_reply : HandoffReason::taken_over));
        CHECK(s.agent == "agent:42");
        CHECK(s.since == t0);
        s = apply(s, ev(Kind::customer_message, 1h), policy);
        CHECK(effective_owner(s, t0 + 1h, policy) == Owner::human);
        s = apply(s, ev(Kind::release, 2h, "agent:42"), policy);
        CHECK(s.owner == Owner::ai);
        CHECK(s.reason == HandoffReason::released);
        CHECK_FALSE(s.agent);
        CHECK(s.since == t0 + 2h);
    }
}

TEST_CASE("a hand-off holds one conversation: a new one goes back to the rules", "[handoff]") {
    HandoffState s = apply(HandoffState{}, ev(Kind::human_reply, 0ms, "agent:9"), policy);
    s = apply(s, ev(Kind::customer_message, 10min), policy);
    CHECK(s.owner == Owner::human);
    s = apply(s, ev(Kind::new_conversation, 50min), policy);
    CHECK(s.owner == Owner::ai);
    CHECK(s.reason == HandoffReason::new_conversation);
    CHECK(s.since == t0 + 50min);
    CHECK_FALSE(s.agent);
    auto stored = decode_handoff(encode(s));
    REQUIRE(stored);
    CHECK(stored->reason == HandoffReason::new_conversation);
    // An AI-owned state keeps its reason; the turn count starts again either way.
    HandoffState a = apply(apply(HandoffState{}, ai(1min), policy), ai(2min), policy);
    CHECK(a.ai_turns == 2);
    a = apply(a, ev(Kind::new_conversation, 3h), policy);
    CHECK(a.owner == Owner::ai);
    CHECK(a.reason == HandoffReason::none);
    CHECK(a.ai_turns == 0);
}

TEST_CASE("idle expiry counts from the human's last action", "[handoff]") {
    HandoffState s = apply(HandoffState{}, ev(Kind::take_over, 0ms, "agent:1"), policy);
    s = apply(s, ev(Kind::human_reply, 3h, "agent:1"), policy);
    // The customer writing does not keep a silent human's hold alive.
    s = apply(s, ev(Kind::customer_message, 6h), policy);
    CHECK(s.owner == Owner::human);
    CHECK(effective_owner(s, t0 + 7h - 1ms, policy) == Owner::human);
    CHECK(effective_owner(s, t0 + 7h, policy) == Owner::ai);
    s = apply(s, ev(Kind::customer_message, 7h), policy);
    CHECK(s.owner == Owner::ai);
    CHECK(s.reason == HandoffReason::idle);
    CHECK_FALSE(s.agent);
    // A later human reply takes it again.
    s = apply(s, ev(Kind::human_reply, 8h, "agent:2"), policy);
    CHECK(s.owner == Owner::human);
    CHECK(s.agent == "agent:2");
    // Zero: never released by itself.
    const HandoffPolicy forever{0ms};
    CHECK(effective_owner(s, t0 + 10000h, forever) == Owner::human);
}

TEST_CASE("an AI reply that cannot help escalates to a human", "[handoff]") {
    HandoffState s = apply(HandoffState{}, ai(1min), policy);
    s = apply(s, ai(2min, true), policy);
    CHECK(s.owner == Owner::human);
    CHECK(s.reason == HandoffReason::cannot_help);
    CHECK(s.ai_turns == 2);
    CHECK(s.since == t0 + 2min);
    CHECK(effective_owner(s, t0 + 2min + 4h - 1ms, policy) == Owner::human);
    CHECK(effective_owner(s, t0 + 2min + 4h, policy) == Owner::ai);
    s = apply(s, ev(Kind::human_reply, 10min, "agent:5"), policy);
    CHECK(s.reason == HandoffReason::human_reply);
    CHECK(s.since == t0 + 2min);  // the owner did not change
    CHECK(s.ai_turns == 0);
}

TEST_CASE("handoff state: encode/decode round trip", "[handoff][codec]") {
    const std::vector<HandoffState> states = {
        HandoffState{},
        HandoffState{Owner::ai, HandoffReason::released, std::nullopt, t0, t0 - 1h, 7},
        HandoffState{Owner::human, HandoffReason::taken_over, "agent:名前", t0, t0, 0},
        HandoffState{Owner::human, HandoffReason::cannot_help, std::nullopt, Timestamp(std::chrono::milliseconds(-5)),
                     Timestamp(std::chrono::milliseconds(INT64_MAX)), UINT32_MAX},
    };
    for (const HandoffState& s : states) {
        const std::string bytes = encode(s);
        CHECK(bytes.size() <= 24 + (s.agent ? s.agent->size() : 0));
        CHECK(static_cast<unsigned char>(bytes[0]) == kHandoffVersion);
        auto back = decode_handoff(bytes);
        REQUIRE(back);
        CHECK(*back == s);
    }
    // An over-long agent id is cut on a UTF-8 boundary.
    HandoffState s{Owner::human, HandoffReason::human_reply, std::string(254, 'a') + "é", t0, t0, 0};
    auto back = decode_handoff(encode(s));
    REQUIRE(back);
    CHECK(*back->agent == std::string(254, 'a'));
}

TEST_CASE("handoff state: hostile bytes are refused, never guessed", "[handoff][codec]") {
    const std::string good = encode(HandoffState{Owner::human, HandoffReason::taken_over, "agent:1", t0, t0, 3});
    auto with = [&](std::size_t i, char c) {
        std::string b = good;
        b[i] = c;
        return b;
    };
    CHECK_FALSE(decode_handoff(""));
    CHECK_FALSE(decode_handoff(good.substr(0, good.size() - 1)));
    CHECK_FALSE(decode_handoff(good + "x"));
    CHECK_FALSE(decode_handoff(with(0, 2)));          // a version this build does not know
    CHECK_FALSE(decode_handoff(with(0, 0)));
    CHECK_FALSE(decode_handoff(with(1, 2)));          // owner out of range
    CHECK_FALSE(decode_handoff(with(2, 6)));          // reason out of range
    CHECK_FALSE(decode_handoff(with(1, 0)));          // AI-owned for a human reason
    CHECK_FALSE(decode_handoff(with(23, 100)));       // agent length beyond the value
    CHECK(decode_handoff(good));
    // Any truncation or random bytes: no crash, and what decodes re-encodes the same.
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::string b = good;
        b.resize(rng() % (good.size() + 4));
        for (char& c : b)
            if (rng() % 4 == 0) c = static_cast<char>(rng());
        if (auto s = decode_handoff(b)) CHECK(encode(*s) == b);
    }
    // Extreme stored times do not overflow the idle check.
    HandoffState far{Owner::human, HandoffReason::taken_over, std::nullopt, Timestamp(std::chrono::milliseconds(INT64_MIN)),
                     Timestamp(std::chrono::milliseconds(INT64_MIN)), 0};
    CHECK(effective_owner(far, Timestamp(std::chrono::milliseconds(INT64_MAX)), policy) == Owner::ai);
    CHECK(effective_owner(HandoffState{Owner::human, HandoffReason::taken_over, std::nullopt,
                                       Timestamp(std::chrono::milliseconds(INT64_MAX)), {}, 0},
                          Timestamp(std::chrono::milliseconds(INT64_MIN)), policy) == Owner::human);
}
