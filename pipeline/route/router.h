// Routing: which outbox (AI or human), with which priority, queue and flags,
// a message goes to. Rules come from a YAML file (docs/routing.md), are
// compiled once at load (regular expressions, time zones, calendars, intent
// names all resolved then) and evaluated in order; the first match wins.
// A conversation a human holds (handoff.h) goes to the human outbox whatever
// the rules say.
//
// Threads: a Router is immutable after load; route() and explain() are const
// and safe to call from any number of threads at once. route() does not
// allocate; Decision::to_route() builds the envelope's strings.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cctz/time_zone.h>

#include "config/diagnostic.h"
#include "envelope/envelope.h"
#include "pipeline/route/handoff.h"

namespace omnibus::pipeline::route {

// The customer's attributes from the identity profile: "tier" → "vip",
// "lifetime_value" → "1250.50". Numeric tests read the value as a decimal number.
using CustomerAttributes = std::map<std::string, std::string, std::less<>>;

// Where the conversation stands, from the history stage.
enum class ConversationState : std::uint8_t {
    new_,      // this message opens a new conversation
    open,      // the conversation goes on
    reopened,  // a new message in a conversation that had been resolved
};
std::string_view to_string(ConversationState s);  // new_ -> "new"

struct RouteContext {
    const CustomerAttributes* customer = nullptr;  // nullptr: no attributes known
    ConversationState conversation = ConversationState::open;
    const HandoffState* handoff = nullptr;  // nullptr: AI-owned, no AI turns yet
    std::chrono::system_clock::time_point now{};
    // The customer's zone, when known (profile, phone country, browser). Rules
    // on the customer's time fall back to the team's zone without it.
    std::optional<cctz::time_zone> customer_time_zone;
};

// An IANA name ("Europe/Madrid") read from /usr/share/zoneinfo, or nullopt.
// Loads are cached by cctz; call it when the customer's profile is read,
// not per rule.
std::optional<cctz::time_zone> load_time_zone(std::string_view name);

// The routed decision. Views point into the Router (rule names, queues,
// flags) and the envelope (language): use it while both live.
struct Decision {
    envelope::RouteTarget target = envelope::RouteTarget::ai;
    int priority = 0;
    std::string_view rule;                    // the rule that won, or "handoff:human", or "default"
    std::string_view queue_prefix;            // queue = prefix + language + suffix when templated
    std::string_view queue_language;          // the message's language for "{language}", else empty
    std::string_view queue_suffix;
    bool has_queue = false;
    std::span<const std::string> flags;       // includes "ai_draft" for ai_draft rules
    bool handoff_override = false;            // a human holds the conversation; the rules were skipped

    std::string queue() const;
    // The envelope's route: target, rule, priority, queue, flags.
    envelope::Route to_route() const;
};

// ---- explain ------------------------------------------------------------------

struct ConditionTrace {
    int depth = 0;           // 0 for a rule's own conditions, +1 inside all_of/any_of/not
    std::string condition;   // "intent in [return_refund] (confidence >= 0.6)"
    bool matched = false;
    std::string why;         // "intent order_status is not one of them"
};

struct RuleTrace {
    std::string rule;
    config::Position position;  // of the rule in the file
    bool matched = false;
    std::vector<ConditionTrace> conditions;  // every condition, also after the first that failed
};

struct Explanation {
    std::optional<std::string> handoff;  // why the rules were skipped, when a human holds it
    std::vector<RuleTrace> rules;        // in order, up to and including the winner
    envelope::Route route;               // what route() decides
};

// Human-readable, one line per rule and condition.
std::string to_text(const Explanation& e);
// {"handoff":…,"rules":[{"rule","line","matched","conditions":[{"depth","condition","matched","why"}]}],
//  "route":{"target","rule","priority","queue","flags"}}
std::string to_json(const Explanation& e);

// ---- loading ------------------------------------------------------------------

// The intents the classifier emits (issue 6). A rule naming another is an error.
const std::vector<std::string>& default_intents();

struct LoadOptions {
    std::vector<std::string> intents = default_intents();
};

class Router;

struct LoadResult {
    std::shared_ptr<const Router> router;   // set exactly when there are no errors
    std::vector<config::Diagnostic> errors;  // in file order
    std::vector<config::Diagnostic> warnings;  // e.g. no final catch-all rule

    bool ok() const { return router != nullptr; }
    // Errors, then warnings ("FILE:LINE:COL: warning: ..."), one per line.
    std::string report() const;
};

class Router {
public:
    static LoadResult load_file(const std::string& path, const LoadOptions& options = {});
    // `display_name` stands for the file name in diagnostics.
    static LoadResult load_string(std::string_view yaml, const std::string& display_name,
                                  const LoadOptions& options = {});
    // config/routing.yaml as built into the binary.
    static std::shared_ptr<const Router> builtin();
    static std::string_view builtin_text();

    Decision route(const envelope::Envelope& env, const RouteContext& ctx) const;
    Explanation explain(const envelope::Envelope& env, const RouteContext& ctx) const;

    std::size_t rule_count() const;
    const std::vector<std::string>& rule_names() const;
    const HandoffPolicy& handoff_policy() const;

    struct Impl;
    explicit Router(std::unique_ptr<Impl> impl);
    ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace omnibus::pipeline::route
