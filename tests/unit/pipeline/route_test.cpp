// Routing rules: each matcher, first match in order, combinators, business
// hours across a DST change and on a holiday, customer vs team time zone,
// queues by language, explain, and load errors with their positions.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/route/router.h"

using namespace omnibus;
using namespace omnibus::pipeline::route;
using std::chrono::system_clock;

namespace {

std::shared_ptr<const Router> load(const std::string& yaml) {
    LoadResult r = Router::load_string(yaml, "rules.yaml");
    if (!r.ok()) FAIL(r.report());
    return r.router;
}

// One rule named "hit" with the given match, then a catch-all "miss".
std::shared_ptr<const Router> one_rule(const std::string& match, const std::string& extra_top = "") {
    return load(extra_top + "rules:\n  - name: hit\n    match:\n" + match +
                "\n    route: human\n  - name: miss\n    route: ai\n");
}

envelope::Envelope message(std::string text = "hello") {
    envelope::Envelope env;
    env.channel = {"whatsapp", "whatsapp-eu"};
    env.content.text = std::move(text);
    env.language = "es";
    return env;
}

system_clock::time_point at(const char* zone, int y, int mo, int d, int h, int mi) {
    auto tz = load_time_zone(zone);
    REQUIRE(tz);
    return cctz::convert(cctz::civil_second(y, mo, d, h, mi, 0), *tz);
}

std::string rule_of(const Router& r, const envelope::Envelope& env, const RouteContext& ctx = {}) {
    return std::string(r.route(env, ctx).rule);
}

}  // namespace

TEST_CASE("each matcher matches and does not match", "[route]") {
    struct Case {
        const char* what;
        std::string match;
        std::function<void(envelope::Envelope&, RouteContext&)> set;
        bool hit;
    };
    static CustomerAttributes vip{{"tier", "vip"}, {"lifetime_value", "2500.50"}};
    static CustomerAttributes plain{{"tier", "basic"}, {"lifetime_value", "12"}};
    static CustomerAttributes odd{{"lifetime_value", "lots"}};
    static HandoffState three_turns{Owner::ai, HandoffReason::none, std::nullopt, {}, {}, 3};
    static HandoffState two_turns{Owner::ai, HandoffReason::none, std::nullopt, {}, {}, 2};
    auto none = [](envelope::Envelope&, RouteContext&) {};
    const std::vector<Case> cases = {
        {"channel type", "      channel_type: [email, whatsapp]", none, true},
        {"channel type other", "      channel_type: email", none, false},
        {"channel name", "      channel_name: whatsapp-eu", none, true},
        {"channel name other", "      channel_name: whatsapp-us", none, false},
        {"language", "      language: [es, pt]", none, true},
        {"language with region matches its language", "      language: pt",
         [](auto& e, auto&) { e.language = "pt-BR"; }, true},
        {"language region must match", "      language: pt-PT", [](auto& e, auto&) { e.language = "pt-BR"; }, false},
        {"language region case", "      language: pt-br", [](auto& e, auto&) { e.language = "pt-BR"; }, true},
        {"language absent", "      language: es", [](auto& e, auto&) { e.language.reset(); }, false},
        {"intent", "      intent: return_refund",
         [](auto& e, auto&) { e.intent = envelope::Intent{"return_refund", 0.9, "r1"}; }, true},
        {"intent other", "      intent: [payment, shipping]",
         [](auto& e, auto&) { e.intent = envelope::Intent{"return_refund", 0.9, "r1"}; }, false},
        {"intent low confidence", "      intent: {in: [return_refund], min_confidence: 0.8}",
         [](auto& e, auto&) { e.intent = envelope::Intent{"return_refund", 0.7, "r1"}; }, false},
        {"intent confidence ok", "      intent: {in: [return_refund], min_confidence: 0.7}",
         [](auto& e, auto&) { e.intent = envelope::Intent{"return_refund", 0.7, "r1"}; }, true},
        {"intent absent", "      intent: other", none, false},
        {"sentiment label", "      sentiment: negative",
         [](auto& e, auto&) { e.sentiment = envelope::Sentiment{envelope::SentimentLabel::negative, -0.2}; }, true},
        {"sentiment score", "      sentiment: {label: negative, max_score: -0.5}",
         [](auto& e, auto&) { e.sentiment = envelope::Sentiment{envelope::SentimentLabel::negative, -0.2}; }, false},
        {"sentiment score low", "      sentiment: {max_score: -0.5}",
         [](auto& e, auto&) { e.sentiment = envelope::Sentiment{envelope::SentimentLabel::negative, -0.8}; }, true},
        {"sentiment min score", "      sentiment: {label: [positive, neutral], min_score: 0.5}",
         [](auto& e, auto&) { e.sentiment = envelope::Sentiment{envelope::SentimentLabel::positive, 0.6}; }, true},
        {"sentiment absent", "      sentiment: neutral", none, false},
        {"entity type", "      entity: order_number",
         [](auto& e, auto&) { e.entities = {{"tracking_number", "1Z999"}, {"order_number", "A-1001"}}; }, true},
        {"entity type absent", "      entity: order_number",
         [](auto& e, auto&) { e.entities = {{"tracking_number", "1Z999"}}; }, false},
        {"entity value", "      entity: {type: order_number, value: '^A-[0-9]+$'}",
         [](auto& e, auto&) { e.entities = {{"order_number", "A-1001"}}; }, true},
        {"entity value other", "      entity: {type: order_number, value: '^B-'}",
         [](auto& e, auto&) { e.entities = {{"order_number", "A-1001"}}; }, false},
        {"customer equals", "      customer: {tier: vip}", [](auto&, auto& c) { c.customer = &vip; }, true},
        {"customer equals other", "      customer: {tier: vip}", [](auto&, auto& c) { c.customer = &plain; }, false},
        {"customer in", "      customer: {tier: [gold, vip]}", [](auto&, auto& c) { c.customer = &vip; }, true},
        {"customer not_in", "      customer: {tier: {not_in: [basic]}}", [](auto&, auto& c) { c.customer = &plain; }, false},
        {"customer min", "      customer: {lifetime_value: {min: 2000}}", [](auto&, auto& c) { c.customer = &vip; }, true},
        {"customer min other", "      customer: {lifetime_value: {min: 2000}}", [](auto&, auto& c) { c.customer = &plain; }, false},
        {"customer below", "      customer: {lifetime_value: {below: 100}}", [](auto&, auto& c) { c.customer = &plain; }, true},
        {"customer not a number", "      customer: {lifetime_value: {above: 0}}", [](auto&, auto& c) { c.customer = &odd; }, false},
        {"customer exists", "      customer: {tier: {exists: true}}", [](auto&, auto& c) { c.customer = &plain; }, true},
        {"customer absent", "      customer: {tier: {exists: false}}", [](auto&, auto& c) { c.customer = &odd; }, true},
        {"customer unknown", "      customer: {tier: vip}", none, false},
        {"conversation", "      conversation: [new, reopened]",
         [](auto&, auto& c) { c.conversation = ConversationState::reopened; }, true},
        {"conversation other", "      conversation: new", none, false},
        {"handoff owner", "      handoff: ai", none, true},
        {"ai turns", "      ai_turns_at_least: 3", [](auto&, auto& c) { c.handoff = &three_turns; }, true},
        {"ai turns fewer", "      ai_turns_at_least: 3", [](auto&, auto& c) { c.handoff = &two_turns; }, false},
        {"keywords", "      keywords: [chargeback, 拒付]", [](auto& e, auto&) { e.content.text = "I will do a CHARGEBACK"; }, true},
        {"keywords cjk", "      keywords: [chargeback, 拒付]", [](auto& e, auto&) { e.content.text = "我要拒付"; }, true},
        {"keywords none", "      keywords: [chargeback]", none, false},
        {"keywords subject", "      keywords: [refund]",
         [](auto& e, auto&) { e.content.text.reset(); e.content.subject = "Refund please"; }, true},
        {"regex", "      regex: '(?i)\\border\\s*#?\\d{4,}'", [](auto& e, auto&) { e.content.text = "Order #12345?"; }, true},
        {"regex none", "      regex: '\\d{6}'", [](auto& e, auto&) { e.content.text = "Order 123"; }, false},
        {"regex no text", "      regex: '.'", [](auto& e, auto&) { e.content.text.reset(); }, false},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        auto r = one_rule(c.match);
        envelope::Envelope env = message();
        RouteContext ctx;
        c.set(env, ctx);
        CHECK(rule_of(*r, env, ctx) == (c.hit ? "hit" : "miss"));
    }
}

TEST_CASE("rules are evaluated in order and the first match wins", "[route]") {
    auto r = load(R"(rules:
  - name: first
    match: {channel_type: whatsapp}
    route: human
    priority: 5
  - name: second
    match: {language: es}
    route: ai
  - name: rest
    route: ai
)");
    envelope::Envelope env = message();
    Decision d = r->route(env, {});
    CHECK(d.rule == "first");
    CHECK(d.target == envelope::RouteTarget::human);
    CHECK(d.priority == 5);
    env.channel.type = "email";
    CHECK(rule_of(*r, env) == "second");
    env.language = "de";
    CHECK(rule_of(*r, env) == "rest");
    CHECK(r->rule_names() == std::vector<std::string>{"first", "second", "rest"});
}

TEST_CASE("combinators: the keys of a match are all of, any_of, not, nesting", "[route]") {
    auto r = one_rule(R"(      channel_type: whatsapp
      any_of:
        - language: de
        - all_of:
            - language: es
            - not: {keywords: [gracias]})");
    envelope::Envelope env = message("quiero devolver esto");
    CHECK(rule_of(*r, env) == "hit");
    env.content.text = "gracias";
    CHECK(rule_of(*r, env) == "miss");
    env.language = "de";
    CHECK(rule_of(*r, env) == "hit");
    env.channel.type = "email";
    CHECK(rule_of(*r, env) == "miss");
}

TEST_CASE("a rule without conditions matches everything, without one the default is ai", "[route]") {
    LoadResult lr = Router::load_string("rules:\n  - name: only\n    match: {language: fr}\n    route: human\n", "r.yaml");
    REQUIRE(lr.ok());
    REQUIRE(lr.warnings.size() == 1);
    CHECK(lr.warnings[0].to_string().find("r.yaml:2:5: warning: no final catch-all rule") == 0);
    Decision d = lr.router->route(message(), {});
    CHECK(d.rule == "default");
    CHECK(d.target == envelope::RouteTarget::ai);
}

TEST_CASE("actions: priority, queue by language, flags, ai_draft", "[route]") {
    auto r = load(R"(rules:
  - name: draft
    match: {intent: payment}
    route: ai_draft
    priority: 30
    queue: "{language}-payments"
    flags: [money]
  - name: returns
    route: human
    queue: "{language}-returns"
)");
    envelope::Envelope env = message();
    env.language = "ES-mx";
    env.intent = envelope::Intent{"payment", 0.9, std::nullopt};
    envelope::Route route = r->route(env, {}).to_route();
    CHECK(route.target == envelope::RouteTarget::human);
    CHECK(route.rule == "draft");
    CHECK(route.priority == 30);
    CHECK(route.queue == "es-payments");
    CHECK(route.flags == std::vector<std::string>{"ai_draft", "money"});
    env.intent.reset();
    CHECK(r->route(env, {}).to_route().queue == "es-returns");
    env.language.reset();
    CHECK(r->route(env, {}).to_route().queue == "-returns");
}

namespace {
const char* kCalendar = R"(time_zone: Europe/Berlin
calendars:
  support:
    hours:
      mon-fri: ["09:00-12:00", "13:00-18:00"]
      sat: "10:00-14:00"
      sun: closed
    holidays: ["2026-12-25"]
)";
}

TEST_CASE("business hours across the spring DST change, lunch, weekend and a holiday", "[route]") {
    auto r = one_rule("      business_hours: inside", kCalendar);
    struct Case {
        system_clock::time_point t;
        bool open;
    };
    const std::vector<Case> cases = {
        // Friday 27 March 2026 is CET (UTC+1), Monday 30 March CEST (UTC+2).
        {at("UTC", 2026, 3, 27, 7, 30), false},  // 08:30 CET
        {at("UTC", 2026, 3, 30, 7, 30), true},   // 09:30 CEST
        {at("UTC", 2026, 3, 27, 16, 30), true},  // 17:30 CET
        {at("UTC", 2026, 3, 30, 16, 30), false}, // 18:30 CEST
        {at("Europe/Berlin", 2026, 3, 30, 12, 30), false},  // lunch
        {at("Europe/Berlin", 2026, 3, 28, 13, 59), true},   // Saturday
        {at("Europe/Berlin", 2026, 3, 28, 14, 0), false},
        {at("Europe/Berlin", 2026, 3, 29, 11, 0), false},   // Sunday
        {at("Europe/Berlin", 2026, 12, 25, 10, 0), false},  // a Friday, but a holiday
        {at("Europe/Berlin", 2026, 12, 24, 10, 0), true},
        // The autumn change: Monday 26 October 2026 is CET again.
        {at("UTC", 2026, 10, 23, 7, 30), true},   // Friday 09:30 CEST
        {at("UTC", 2026, 10, 26, 7, 30), false},  // Monday 08:30 CET
    };
    for (std::size_t i = 0; i < cases.size(); ++i) {
        INFO("case " << i);
        RouteContext ctx;
        ctx.now = cases[i].t;
        CHECK(rule_of(*r, message(), ctx) == (cases[i].open ? "hit" : "miss"));
    }
}

TEST_CASE("time zones are IANA names, never paths", "[route]") {
    CHECK(load_time_zone("Europe/Madrid"));
    CHECK(load_time_zone("America/Argentina/Buenos_Aires"));
    CHECK(load_time_zone("Etc/GMT+5"));
    CHECK(load_time_zone("UTC"));
    CHECK_FALSE(load_time_zone(""));
    CHECK_FALSE(load_time_zone("Mars/Olympus_Mons"));
    CHECK_FALSE(load_time_zone("/etc/localtime"));
    CHECK_FALSE(load_time_zone("../../../etc/localtime"));
    CHECK_FALSE(load_time_zone("Europe/../Europe/Madrid"));
    CHECK_FALSE(load_time_zone(std::string("Europe/Madrid\0x", 15)));
    CHECK_FALSE(load_time_zone(std::string(65, 'A')));
}

TEST_CASE("customer's time zone versus the team's", "[route]") {
    auto team = one_rule("      business_hours: {calendar: support, is: inside}", kCalendar);
    auto cust = one_rule("      business_hours: {calendar: support, is: inside, zone: customer}", kCalendar);
    auto night = one_rule("      time_of_day: {between: '22:00-07:00', zone: customer}", kCalendar);
    auto tokyo_weekend = one_rule("      time_of_day: {between: '09:00-17:00', days: [sat, sun], zone: Asia/Tokyo}");
    RouteContext ctx;
    ctx.now = at("Europe/Berlin", 2026, 6, 3, 10, 0);  // Wednesday 10:00 in Berlin, 17:00 in Tokyo
    ctx.customer_time_zone = load_time_zone("Asia/Tokyo");
    CHECK(rule_of(*team, message(), ctx) == "hit");
    CHECK(rule_of(*cust, message(), ctx) == "hit");
    CHECK(rule_of(*night, message(), ctx) == "miss");
    ctx.now = at("Europe/Berlin", 2026, 6, 3, 16, 0);  // 23:00 in Tokyo
    CHECK(rule_of(*team, message(), ctx) == "hit");
    CHECK(rule_of(*cust, message(), ctx) == "miss");
    CHECK(rule_of(*night, message(), ctx) == "hit");
    // Without the customer's zone the team's is used: 16:00 is not night.
    ctx.customer_time_zone.reset();
    CHECK(rule_of(*cust, message(), ctx) == "hit");
    CHECK(rule_of(*night, message(), ctx) == "miss");
    // A window across midnight belongs to the day it starts on.
    ctx.now = at("Asia/Tokyo", 2026, 6, 6, 10, 0);  // Saturday in Tokyo
    CHECK(rule_of(*tokyo_weekend, message(), ctx) == "hit");
    ctx.now = at("Asia/Tokyo", 2026, 6, 8, 10, 0);  // Monday
    CHECK(rule_of(*tokyo_weekend, message(), ctx) == "miss");
}

TEST_CASE("a conversation a human holds goes to human whatever the rules say", "[route][handoff]") {
    auto r = load(R"(handoff: {release_after_idle: 2h, priority: 40, queue: "{language}-handoff"}
rules:
  - name: everything_ai
    route: ai
)");
    HandoffState h;
    HandoffPolicy policy = r->handoff_policy();
    CHECK(policy.release_after_idle == std::chrono::hours(2));
    const auto t0 = at("UTC", 2026, 6, 3, 10, 0);
    const envelope::Timestamp ts0 = std::chrono::time_point_cast<std::chrono::milliseconds>(t0);
    h = apply(h, {HandoffEvent::Kind::human_reply, ts0, "agent:7", false, false}, policy);
    RouteContext ctx;
    ctx.handoff = &h;
    ctx.now = t0 + std::chrono::minutes(30);
    Decision d = r->route(message(), ctx);
    CHECK(d.handoff_override);
    envelope::Route route = d.to_route();
    CHECK(route.rule == "handoff:human");
    CHECK(route.target == envelope::RouteTarget::human);
    CHECK(route.priority == 40);
    CHECK(route.queue == "es-handoff");
    CHECK(route.flags == std::vector<std::string>{"handoff"});
    // Idle past the release time: the rules decide again.
    ctx.now = t0 + std::chrono::hours(2);
    CHECK(r->route(message(), ctx).rule == "everything_ai");
    // An escalation says so.
    HandoffState e = apply(HandoffState{}, {HandoffEvent::Kind::ai_reply, ts0, std::nullopt, true, false}, policy);
    ctx.handoff = &e;
    ctx.now = t0;
    CHECK(r->route(message(), ctx).to_route().flags == std::vector<std::string>{"handoff", "cannot_help"});
}

TEST_CASE("explain lists every rule and condition up to the winner, and why", "[route][explain]") {
    auto r = load(R"(rules:
  - name: refunds
    match:
      intent: return_refund
      language: es
    route: human
  - name: angry
    match:
      sentiment: {label: negative, max_score: -0.5}
      not: {channel_type: email}
    route: human
    priority: 90
    flags: [angry]
  - name: rest
    route: ai
)");
    envelope::Envelope env = message("¡Esto es una estafa!");
    env.intent = envelope::Intent{"order_status", 0.8, "es.order"};
    env.sentiment = envelope::Sentiment{envelope::SentimentLabel::negative, -0.75};
    Explanation e = r->explain(env, {});
    REQUIRE(e.rules.size() == 2);
    CHECK(e.rules[0].rule == "refunds");
    CHECK(e.rules[0].position.line == 2);
    CHECK_FALSE(e.rules[0].matched);
    REQUIRE(e.rules[0].conditions.size() == 2);
    CHECK(e.rules[0].conditions[0].condition == "intent in [return_refund]");
    CHECK(e.rules[0].conditions[0].why == "intent order_status (0.8) not in [return_refund]");
    CHECK(e.rules[0].conditions[1].matched);  // evaluated although the first failed
    CHECK(e.rules[1].matched);
    REQUIRE(e.rules[1].conditions.size() == 3);
    CHECK(e.rules[1].conditions[1].condition == "not");
    CHECK(e.rules[1].conditions[2].depth == 1);
    CHECK(e.rules[1].conditions[2].why == "channel type 'whatsapp' is not one of them");
    CHECK(e.route.rule == "angry");
    CHECK(e.route.priority == 90);
    const std::string text = to_text(e);
    CHECK(text.find("rule refunds (line 2): no match\n  [ ] intent in [return_refund]: intent order_status (0.8) not in "
                    "[return_refund]\n") == 0);
    CHECK(text.find("route: human rule=angry priority=90 flags=angry\n") != std::string::npos);
    const std::string json = to_json(e);
    CHECK(json.find(R"({"rules":[{"rule":"refunds","line":2,"matched":false,"conditions":[{"depth":0,)") == 0);
    CHECK(json.find(R"("route":{"target":"human","rule":"angry","priority":90,"flags":["angry"]}})") != std::string::npos);

    HandoffState h{Owner::human, HandoffReason::taken_over, "agent:3", {}, {}, 0};
    RouteContext ctx;
    ctx.handoff = &h;
    Explanation held = r->explain(env, ctx);
    CHECK(held.rules.empty());
    REQUIRE(held.handoff);
    CHECK(*held.handoff == "a human holds the conversation (taken_over, agent:3); the rules are not evaluated");
    CHECK(held.route.rule == "handoff:human");
}

TEST_CASE("load errors name the file, line and column", "[route][load]") {
    struct Case {
        std::string yaml;
        std::string first_error;
    };
    const std::vector<Case> cases = {
        {"rules:\n  - name: a\n    mach: {}\n    route: ai\n", "r.yaml:3:5: rule: unknown key 'mach'; did you mean 'match'?"},
        {"rules:\n  - name: a\n    match: {intnet: payment}\n    route: ai\n",
         "r.yaml:3:13: rule 'a': match: unknown key 'intnet'; did you mean 'intent'?"},
        {"rules:\n  - name: a\n    match: {intent: refund}\n    route: ai\n",
         "r.yaml:3:21: rule 'a': intent: unknown intent 'refund'"},
        {"rules:\n  - name: a\n    match: {intent: payemnt}\n    route: ai\n",
         "r.yaml:3:21: rule 'a': intent: unknown intent 'payemnt'; did you mean 'payment'?"},
        {"rules:\n  - name: a\n    match: {regex: 'a(b'}\n    route: ai\n",
         "r.yaml:3:20: rule 'a': regex: bad regular expression 'a(b': missing ): a(b"},
        {"time_zone: Europe/Madird\nrules:\n  - name: a\n    route: ai\n",
         "r.yaml:1:12: time_zone: unknown time zone 'Europe/Madird' (an IANA name such as 'Europe/Madrid')"},
        {"calendars:\n  eu: {hours: {mon: '09:00-18:00'}}\nrules:\n  - name: a\n    match: {business_hours: {calendar: e, is: inside}}\n    route: ai\n",
         "r.yaml:5:40: rule 'a': business_hours: unknown calendar 'e'; did you mean 'eu'?"},
        {"rules:\n  - name: a\n    route: ai\n  - name: a\n    route: human\n",
         "r.yaml:4:5: rules: duplicate rule name 'a'; first used at 2:5"},
        {"rules:\n  - name: a\n    route: robot\n", "r.yaml:3:12: rule 'a': route: expected ai, human or ai_draft, got 'robot'"},
        {"rules:\n  - name: a\n    priority: high\n    route: ai\n", "r.yaml:3:15: rule 'a': priority: expected"},
        {"rules:\n  - name: a\n    match: {sentiment: {max_score: -2}}\n    route: ai\n",
         "r.yaml:3:36: rule 'a': sentiment.max_score: must be within -1..1"},
        {"rules:\n  - name: a\n    match: {channel_type: [1, [2]]}\n    route: ai\n",
         "r.yaml:3:31: rule 'a': channel_type: expected a non-empty string, got a list"},
        {"rules:\n  - name: a\n    match: {business_hours: inside}\n    route: ai\n",
         "r.yaml:3:29: rule 'a': business_hours: no calendars are defined"},
        {"calendars:\n  eu:\n    hours: {mon: '18:00-09:00'}\nrules:\n  - name: a\n    route: ai\n",
         "r.yaml:3:18: calendars.eu.hours.mon: '18:00-09:00' ends before it starts"},
        {"calendars:\n  eu:\n    hours: {mon: '9-5'}\nrules:\n  - name: a\n    route: ai\n",
         "r.yaml:3:18: calendars.eu.hours.mon: expected a time range such as '09:00-18:00', got '9-5'"},
        {"calendars:\n  eu:\n    hours: {mno: '09:00-17:00'}\nrules:\n  - name: a\n    route: ai\n",
         "r.yaml:3:18: calendars.eu.hours: unknown day 'mno'"},
        {"calendars:\n  eu:\n    hours: {mon: '09:00-17:00'}\n    holidays: ['2026-02-30']\nrules:\n  - name: a\n    route: ai\n",
         "r.yaml:4:15: calendars.eu.holidays: expected a date such as '2026-12-25', got '2026-02-30'"},
        {"rules:\n  - name: a\n    queue: '{lang}-x'\n    route: ai\n",
         "r.yaml:3:12: rule 'a': queue: the only placeholder is '{language}' (once), got '{lang}-x'"},
        {"rules: []\n", "r.yaml:1:8: rules: the list is empty"},
        {"", "r.yaml:1:1: the rules file is empty"},
        {"rules: [a: b: c\n", "r.yaml:1:"},
        {"rules:\n  - match: {}\n    route: ai\n", "r.yaml:2:5: rule: 'name' is required"},
        {"rules:\n  - name: a\n", "r.yaml:2:5: rule 'a': 'route' is required"},
        {"rules:\n  - name: a\n    match: {customer: {ltv: {mni: 3}}}\n    route: ai\n",
         "r.yaml:3:30: rule 'a': customer.ltv: unknown key 'mni'; did you mean 'min'?"},
        {"rules:\n  - name: a\n    match: &m {not: *m}\n    route: ai\n", "nested too deeply"},
    };
    for (const Case& c : cases) {
        INFO(c.yaml);
        LoadResult r = Router::load_string(c.yaml, "r.yaml");
        CHECK_FALSE(r.ok());
        REQUIRE_FALSE(r.errors.empty());
        const std::string got = r.errors.front().to_string();
        INFO(r.report());
        if (c.first_error.rfind("r.yaml", 0) == 0) {
            CHECK(got.rfind(c.first_error, 0) == 0);
        } else {
            CHECK(r.report().find(c.first_error) != std::string::npos);
        }
    }
}

TEST_CASE("every error is reported at once", "[route][load]") {
    LoadResult r = Router::load_string(
        "rules:\n  - name: a\n    match: {intent: nope}\n    route: ai\n  - name: b\n    route: nowhere\n", "r.yaml");
    CHECK(r.errors.size() == 2);
}

TEST_CASE("a file that cannot be read", "[route][load]") {
    LoadResult r = Router::load_file("/nonexistent/routing.yaml");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].to_string() == "/nonexistent/routing.yaml: cannot read: No such file or directory");
}

TEST_CASE("intents the classifier adds can be allowed", "[route][load]") {
    LoadOptions o;
    o.intents.push_back("warranty");
    CHECK(Router::load_string("rules:\n  - name: w\n    match: {intent: warranty}\n    route: human\n  - name: r\n    route: ai\n",
                              "r.yaml", o).ok());
}

TEST_CASE("the default rules: built in, the same as config/routing.yaml, and they route a shop's cases", "[route][default]") {
    LoadResult file = Router::load_file(OMNIBUS_SOURCE_DIR "/config/routing.yaml");
    REQUIRE(file.ok());
    CHECK(file.warnings.empty());
    auto r = Router::builtin();
    CHECK(r->rule_names() == file.router->rule_names());

    const auto open = at("Europe/Berlin", 2026, 6, 3, 11, 0);   // Wednesday
    const auto night = at("Europe/Berlin", 2026, 6, 3, 23, 0);
    const auto christmas = at("Europe/Berlin", 2026, 12, 25, 11, 0);
    static CustomerAttributes vip{{"tier", "vip"}};
    static CustomerAttributes big{{"lifetime_value", "5400"}};
    static HandoffState stuck{Owner::ai, HandoffReason::none, std::nullopt, {}, {}, 3};
    struct Case {
        const char* what;
        std::function<void(envelope::Envelope&, RouteContext&)> set;
        std::string rule;
        envelope::RouteTarget target;
        std::optional<std::string> queue;
    };
    using T = envelope::RouteTarget;
    const std::vector<Case> cases = {
        {"转人工", [](auto& e, auto&) { e.language = "zh"; e.intent = envelope::Intent{"human_requested", 0.95, {}}; },
         "human_requested", T::human, "zh-general"},
        {"angry refund in Spanish",
         [](auto& e, auto&) {
             e.intent = envelope::Intent{"return_refund", 0.9, {}};
             e.sentiment = envelope::Sentiment{envelope::SentimentLabel::negative, -0.8};
         },
         "angry_refund", T::human, "es-returns"},
        {"refund with a chargeback threat",
         [](auto& e, auto&) {
             e.language = "en";
             e.content.text = "refund now or I file a chargeback";
             e.intent = envelope::Intent{"return_refund", 0.9, {}};
         },
         "angry_refund", T::human, "en-returns"},
        {"calm refund", [](auto& e, auto&) { e.intent = envelope::Intent{"return_refund", 0.9, {}}; }, "default", T::ai, {}},
        {"AI stuck", [](auto&, auto& c) { c.handoff = &stuck; }, "ai_stuck", T::human, "es-general"},
        {"VIP in hours", [](auto&, auto& c) { c.customer = &vip; }, "vip_business_hours", T::human, "vip"},
        {"big spender in hours", [](auto&, auto& c) { c.customer = &big; }, "vip_business_hours", T::human, "vip"},
        {"VIP at night", [night](auto&, auto& c) { c.customer = &vip; c.now = night; }, "outside_business_hours", T::ai, {}},
        {"VIP on a holiday", [christmas](auto&, auto& c) { c.customer = &vip; c.now = christmas; },
         "outside_business_hours", T::ai, {}},
        {"payment in hours: AI drafts", [](auto& e, auto&) { e.intent = envelope::Intent{"payment", 0.8, {}}; },
         "payment_draft", T::human, "es-payments"},
        {"order status in hours", [](auto& e, auto&) { e.intent = envelope::Intent{"order_status", 0.8, {}}; }, "default",
         T::ai, {}},
        {"at night", [night](auto&, auto& c) { c.now = night; }, "outside_business_hours", T::ai, {}},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        envelope::Envelope env = message();
        RouteContext ctx;
        ctx.now = open;
        c.set(env, ctx);
        envelope::Route route = r->route(env, ctx).to_route();
        CHECK(route.rule == c.rule);
        CHECK(route.target == c.target);
        CHECK(route.queue == c.queue);
    }
}

TEST_CASE("route() is safe from many threads at once", "[route]") {
    auto r = Router::builtin();
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            envelope::Envelope env = message();
            env.intent = envelope::Intent{"human_requested", 0.9, {}};
            for (int i = 0; i < 2000; ++i) {
                if (r->route(env, {}).rule != "human_requested") ++wrong;
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(wrong == 0);
}
