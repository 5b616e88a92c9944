// Reading an explain request: a bare envelope body, or envelope + context.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "pipeline/route/explain_input.h"

using namespace omnibus;
using namespace omnibus::pipeline::route;

namespace {

std::string envelope_json() {
    std::ifstream in(OMNIBUS_SOURCE_DIR "/tests/data/envelope/inbound_messenger_enriched.json");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1'780'000'000));

}  // namespace

TEST_CASE("explain input: a bare envelope gets the default context", "[route][explain]") {
    auto in = parse_explain_input(envelope_json(), kNow);
    REQUIRE(in.ok());
    CHECK(in->envelope.language == "ar");
    CHECK(in->context.now == kNow);
    CHECK(in->context.customer == nullptr);
    CHECK(in->context.handoff == nullptr);
}

TEST_CASE("explain input: envelope and context", "[route][explain]") {
    const std::string text = R"({"envelope": )" + envelope_json() + R"(, "context": {
        "customer": {"tier": "vip"}, "conversation": "reopened",
        "handoff": {"owner": "human", "agent": "agent:7", "since": "2026-06-03T09:00:00Z", "ai_turns": 2},
        "now": "2026-06-03T21:00:00Z", "customer_time_zone": "Africa/Cairo"}})";
    auto in = parse_explain_input(text, kNow);
    if (!in.ok()) FAIL(in.error().to_string());
    REQUIRE(in->context.customer);
    CHECK(in->context.customer->at("tier") == "vip");
    CHECK(in->context.conversation == ConversationState::reopened);
    REQUIRE(in->context.handoff);
    CHECK(in->context.handoff->owner == Owner::human);
    CHECK(in->context.handoff->reason == HandoffReason::taken_over);
    CHECK(in->context.handoff->agent == "agent:7");
    CHECK(in->context.handoff->ai_turns == 2);
    CHECK(in->context.customer_time_zone);
    CHECK(in->context.now != kNow);
    // Moved, the context still points at its own attributes.
    ExplainInput moved = std::move(in).value();
    CHECK(moved.context.customer == moved.customer.get());
    // Released by idle time by 21:00 (12 h later): the built-in rules decide, outside hours.
    Explanation e = Router::builtin()->explain(moved.envelope, moved.context);
    REQUIRE(e.handoff);
    CHECK(e.route.rule == "outside_business_hours");
}

TEST_CASE("explain input: errors name the field", "[route][explain]") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {R"([1])", "body: expected an object"},
        {R"({"envelope": {}, "context": {}})", "envelope."},
        {R"({"envelope": )" + envelope_json() + R"(, "context": {"now": "yesterday"}})", "context.now: expected an RFC 3339 time"},
        {R"({"envelope": )" + envelope_json() + R"(, "context": {"customer_time_zone": "Mars/Base"}})",
         "context.customer_time_zone: expected an IANA time zone name"},
        {R"({"envelope": )" + envelope_json() + R"(, "context": {"handoff": {"owner": "robot"}}})", "context.handoff.owner"},
        {R"({"envelope": )" + envelope_json() + R"(, "context": {"custmer": {}}})", "context.custmer: unknown field"},
        {R"({"envelope": )" + envelope_json() + R"(, "extra": 1})", "extra: unknown field"},
    };
    for (const auto& [text, want] : cases) {
        INFO(text.substr(0, 80));
        auto in = parse_explain_input(text, kNow);
        REQUIRE_FALSE(in.ok());
        CHECK(in.error().to_string().find(want) != std::string::npos);
    }
}
