// libFuzzer target: arbitrary bytes as a routing rules file (Router::load_string).
// It must never crash or let an exception out; a file that loads must route and
// explain a message, and explain must agree with route.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pipeline/route/router.h"

using namespace omnibus;
using namespace omnibus::pipeline::route;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    LoadResult r = Router::load_string(text, "fuzz.yaml");
    if (r.ok() != r.errors.empty()) std::abort();
    (void)r.report();
    if (!r.ok()) return 0;

    static const CustomerAttributes customer{{"tier", "vip"}, {"lifetime_value", "2500"}};
    envelope::Envelope env;
    env.channel = {"whatsapp", "whatsapp-eu"};
    env.content.text = "quiero un reembolso YA, chargeback 拒付 #12345";
    env.language = "es-MX";
    env.intent = envelope::Intent{"return_refund", 0.8, "es.refund"};
    env.sentiment = envelope::Sentiment{envelope::SentimentLabel::negative, -0.7};
    env.entities = {{"order_number", "12345"}};
    HandoffState h{Owner::ai, HandoffReason::none, std::nullopt, {}, {}, 2};
    RouteContext ctx;
    ctx.customer = &customer;
    ctx.handoff = &h;
    ctx.now = std::chrono::system_clock::time_point(std::chrono::seconds(1'780'000'000));
    ctx.customer_time_zone = load_time_zone("Asia/Tokyo");
    const envelope::Route routed = r.router->route(env, ctx).to_route();
    const Explanation e = r.router->explain(env, ctx);
    if (!(e.route == routed)) std::abort();
    (void)to_text(e);
    (void)to_json(e);
    return 0;
}
