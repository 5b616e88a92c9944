// ns per routing decision: the built-in rules plus 13 more of the kinds a shop
// writes (20 in all), over a mix of typical messages that mostly fall through
// to the last rules (the slow path). Prints p50/p99 of route(), of route() +
// to_route() (the envelope's strings) and of explain(). A figure beside the
// budget (issue 6: classification + routing <= 10 µs p99), not a test.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "pipeline/route/router.h"

using namespace omnibus;
using namespace omnibus::pipeline::route;
using Clock = std::chrono::steady_clock;

// Counts heap allocations, to show that route() makes none. (g++ 12 takes the
// malloc/free pair below for a mismatch once operator new is replaced.)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<std::size_t> g_allocations{0};
void* operator new(std::size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

const char* kExtraRules = R"(
  - name: line_japan
    match: {channel_type: line, language: ja, intent: [shipping, order_status]}
    route: ai
    queue: ja-shipping
  - name: email_invoices
    match: {channel_type: email, keywords: [invoice, factura, rechnung, facture, 发票]}
    route: ai_draft
    queue: "{language}-billing"
  - name: tracking_number_given
    match: {entity: {type: tracking_number, value: '^(1Z|JD|LP)[0-9A-Z]{8,}$'}, intent: shipping}
    route: ai
    flags: [has_tracking]
  - name: legal_threat
    match: {regex: '(?i)\b(lawyer|abogado|anwalt|avocat|律师|弁護士)\b'}
    route: human
    priority: 95
    queue: legal
  - name: new_wholesale
    match: {conversation: new, customer: {segment: wholesale}}
    route: human
    queue: b2b
  - name: reopened_complaint
    match: {conversation: reopened, intent: complaint}
    route: human
    priority: 70
    queue: "{language}-complaints"
  - name: night_asia
    match: {time_of_day: {between: '00:00-06:00', zone: customer}, language: [zh, ja, ko]}
    route: ai
    flags: [night]
  - name: instagram_positive
    match: {channel_type: instagram, sentiment: {label: positive, min_score: 0.6}}
    route: ai
    flags: [praise]
  - name: account_security
    match: {intent: account, keywords: [hacked, password, contraseña, passwort, 密码]}
    route: human
    priority: 80
    queue: security
  - name: high_value_order
    match: {customer: {lifetime_value: {min: 10000}}, not: {intent: greeting}}
    route: human
    queue: vip
  - name: arabic_returns
    match: {language: ar, intent: return_refund}
    route: human
    queue: ar-returns
  - name: telegram_bots
    match: {channel_type: telegram, any_of: [{intent: other}, {intent: greeting}]}
    route: ai
  - name: product_question_in_hours
    match: {intent: {in: [product_question], min_confidence: 0.9}, business_hours: inside, channel_name: webchat-de}
    route: ai_draft
    queue: de-products
)";

std::string twenty_rules() {
    std::string base(Router::builtin_text());
    // The extra rules go before the two catch-all-ish rules at the end.
    const auto at = base.find("  - name: outside_business_hours");
    if (at == std::string::npos) std::abort();
    return base.substr(0, at) + std::string(kExtraRules).substr(1) + "\n" + base.substr(at);
}

struct Sample {
    envelope::Envelope env;
    RouteContext ctx;
};

void report(const char* what, std::vector<double>& ns) {
    std::sort(ns.begin(), ns.end());
    auto q = [&](double p) { return ns[static_cast<std::size_t>(p * static_cast<double>(ns.size() - 1))]; };
    std::printf("  %-24s p50 %7.0f ns   p99 %7.0f ns   p99.9 %7.0f ns\n", what, q(0.50), q(0.99), q(0.999));
}

}  // namespace

int main() {
    LoadResult lr = Router::load_string(twenty_rules(), "bench.yaml");
    if (!lr.ok()) {
        std::fprintf(stderr, "%s", lr.report().c_str());
        return 1;
    }
    const Router& router = *lr.router;

    static const CustomerAttributes plain{{"tier", "basic"}, {"lifetime_value", "120.50"}, {"segment", "retail"}};
    static const HandoffState one_turn{Owner::ai, HandoffReason::none, std::nullopt, {}, {}, 1};
    const auto tokyo = load_time_zone("Asia/Tokyo");
    const auto berlin = load_time_zone("Europe/Berlin");
    // Wednesday 3 June 2026, 11:00 in Berlin: inside business hours, so the
    // in-hours rules are evaluated to the end.
    const auto now = cctz::convert(cctz::civil_second(2026, 6, 3, 11, 0, 0), *berlin);

    std::vector<Sample> samples;
    const char* texts[] = {"Hola, ¿dónde está mi pedido 123456? Gracias",
                           "Hi, when will my order ship? It has been a week",
                           "我的包裹到哪里了？订单号 98765",
                           "Bonjour, je voudrais savoir où en est ma commande"};
    const char* langs[] = {"es", "en", "zh", "fr"};
    const char* intents[] = {"order_status", "shipping", "order_status", "order_status"};
    for (int i = 0; i < 4; ++i) {
        Sample s;
        s.env.channel = {i == 2 ? "webchat" : "whatsapp", i == 2 ? "webchat-cn" : "whatsapp-eu"};
        s.env.content.text = texts[i];
        s.env.language = langs[i];
        s.env.language_confidence = 0.97;
        s.env.intent = envelope::Intent{intents[i], 0.86, "rule"};
        s.env.sentiment = envelope::Sentiment{envelope::SentimentLabel::neutral, 0.05};
        s.env.entities = {{"order_number", "123456"}};
        s.ctx.customer = &plain;
        s.ctx.handoff = &one_turn;
        s.ctx.now = now;
        s.ctx.conversation = ConversationState::open;
        if (i == 2) s.ctx.customer_time_zone = tokyo;
        samples.push_back(std::move(s));
    }

    std::printf("bench_route: %zu rules, %zu message kinds, each falling through to '%s'\n", router.rule_count(),
                samples.size(), std::string(router.route(samples[0].env, samples[0].ctx).rule).c_str());
    constexpr int kWarm = 20'000, kRuns = 400'000;
    std::size_t sink = 0;
    for (int i = 0; i < kWarm; ++i) sink += router.route(samples[i % 4].env, samples[i % 4].ctx).rule.size();

    const std::size_t allocations_before = g_allocations.load();
    for (int i = 0; i < 10'000; ++i) sink += router.route(samples[i % 4].env, samples[i % 4].ctx).rule.size();
    std::printf("  heap allocations per route(): %.3f\n",
                static_cast<double>(g_allocations.load() - allocations_before) / 10'000);

    std::vector<double> ns;
    ns.reserve(kRuns);
    // Batches of 16 decisions, so the clock read (~20 ns) does not dominate; the
    // single-call figures below include it, and show the tail of one decision.
    for (int i = 0; i < kRuns / 16; ++i) {
        const auto t0 = Clock::now();
        for (int j = 0; j < 16; ++j) {
            const Sample& s = samples[static_cast<std::size_t>(j) % 4];
            sink += router.route(s.env, s.ctx).rule.size();
        }
        ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / 16);
    }
    report("route() per decision", ns);
    ns.clear();
    for (int i = 0; i < kRuns; ++i) {
        const Sample& s = samples[static_cast<std::size_t>(i) % 4];
        const auto t0 = Clock::now();
        sink += router.route(s.env, s.ctx).rule.size();
        ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
    }
    report("route() single calls", ns);
    ns.clear();
    for (int i = 0; i < kRuns; ++i) {
        const Sample& s = samples[static_cast<std::size_t>(i) % 4];
        const auto t0 = Clock::now();
        const envelope::Route r = router.route(s.env, s.ctx).to_route();
        ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
        sink += r.flags.size();
    }
    report("route() + to_route()", ns);
    ns.clear();
    for (int i = 0; i < kRuns / 20; ++i) {
        const Sample& s = samples[static_cast<std::size_t>(i) % 4];
        const auto t0 = Clock::now();
        const Explanation e = router.explain(s.env, s.ctx);
        ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
        sink += e.rules.size();
    }
    report("explain()", ns);
    std::printf("  budget: classification + routing <= 10000 ns p99 (issue 6); routing alone <= 2000 ns p99\n");
    return sink == 0 ? 1 : 0;
}
