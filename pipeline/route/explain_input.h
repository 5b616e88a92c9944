// What `omnibusd --explain-route FILE.json` reads: an envelope body, or
// {"envelope": {…}, "context": {…}} with the routing context spelt out, so a
// support lead can ask "where would this message go for a VIP at 23:00?".
//
//   "context": {
//     "customer": {"tier": "vip", "lifetime_value": "2500"},   // string values
//     "conversation": "new" | "open" | "reopened",
//     "handoff": {"owner": "human", "reason": "taken_over", "agent": "agent:7",
//                 "since": RFC 3339, "last_human_action": RFC 3339, "ai_turns": 2},
//     "now": RFC 3339,                                         // default: the caller's now
//     "customer_time_zone": "Asia/Tokyo"
//   }
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "envelope/envelope.h"
#include "pipeline/route/router.h"

namespace omnibus::pipeline::route {

struct ExplainInput {
    envelope::Envelope envelope;
    std::unique_ptr<CustomerAttributes> customer;  // null when the file gives none
    std::unique_ptr<HandoffState> handoff;         // null: AI-owned, no turns
    RouteContext context;                          // points at the two above

    ExplainInput() = default;
    ExplainInput(ExplainInput&&) = default;  // the pointees do not move, only their owners
    ExplainInput& operator=(ExplainInput&&) = default;
};

// Errors name the field ("context.now: expected an RFC 3339 time").
envelope::Result<ExplainInput> parse_explain_input(std::string_view json, std::chrono::system_clock::time_point now);

}  // namespace omnibus::pipeline::route
