// The WhatsApp channel's outbound path end to end: reply envelopes produced to
// omnibus.delivery on a real Kafka protocol cluster (librdkafka's mock, over
// TCP), read by the delivery dispatcher, sent by the channel over HTTP to a
// local fake Graph API that checks the token and the body and answers as the
// real one does (including 429/500/400); statuses, dead letters and the human
// outbox read back with kcat.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "config/loader.h"
#include "connectors/delivery_dispatcher.h"
#include "connectors/meta/webhook_signature.h"
#include "connectors/registry.h"
#include "connectors/whatsapp/whatsapp_connector.h"
#include "connectors/whatsapp/whatsapp_spec.h"
#include "edge/edge_server.h"
#include "envelope/envelope.h"
#include "integration/edge/http_client.h"
#include "integration/kafka/kafka_test_support.h"
#include "metrics/metrics.h"
#include "support/scratch_dir.h"
#include "whatsapp_channel_support.h"
#include "support/fake_graph_api.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using omnibus::test::FakeGraphApi;
using omnibus::test::HttpResponse;
using omnibus::test::RawClient;

namespace {

constexpr const char* kAppSecret = "test-app-secret";
constexpr const char* kToken = "EAAG-outbound-token";
constexpr const char* kPhoneNumberId = "106540352242922";
const std::string kInbound = "omnibus.inbound";
const std::string kEvents = "omnibus.events";
const std::string kDeadletter = "omnibus.deadletter";
const std::string kDelivery = "omnibus.delivery";
const std::string kHuman = "omnibus.outbox.human";
constexpr const char* kCustomer = "4915123456789";

// `extra`: more options of the channel block, one per line, not indented.
config::Section load_block(const std::string& graph_url, const std::string& extra) {
    std::string indented;
    for (const auto& line : split(extra, '\n'))
        if (!line.empty()) indented += "    " + line + "\n";
    // Fast retries unless the test sets its own.
    for (const char* def : {"retry_backoff: 50ms", "retry_backoff_max: 400ms", "request_timeout: 2s"}) {
        const std::string d = def;
        if (extra.find(d.substr(0, d.find(':') + 1)) == std::string::npos) indented += "    " + d + "\n";
    }
    config::LoadOptions o;
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "WA_TOKEN") return kToken;
        return std::nullopt;
    };
    const config::LoadResult r = config::load_string(
        "channels:\n  - name: wa\n    type: whatsapp\n"
        "    app_secret: " + std::string(kAppSecret) + "\n    verify_token: v\n    access_token: ${env:WA_TOKEN}\n"
        "    phone_number_id: \"" + kPhoneNumberId + "\"\n    graph_api_url: " + graph_url + "\n" +
            indented,
        "omnibus.yaml", connectors::whatsapp::testing::root_spec(), o);
    INFO(r.report());
    REQUIRE(r.ok());
    return r.config->blocks("channels").at(0);
}

struct Line {
    std::string key, headers, value;
    bool has(const std::string& s) const {
        return headers.find(s) != std::string::npos || value.find(s) != std::string::npos;
    }
};

struct Harness {
    EmbeddedCluster cluster;
    KafkaSettings kafka;
    metrics::Registry registry;
    std::unique_ptr<Producer> producer;
    omnibus::test::ScratchDir state{"omnibus-wa-out"};
    FakeGraphApi graph;
    config::Section block;
    edge::EdgeSettings edge_settings;
    std::unique_ptr<metrics::Registry> edge_registry;
    std::unique_ptr<edge::EdgeServer> edge;
    std::unique_ptr<connectors::Connector> connector;
    std::unique_ptr<connectors::DeliveryDispatcher> dispatcher;

    // `graph_token`: the token the fake Graph API accepts (the channel always sends kToken).
    explicit Harness(const std::string& extra = "window_unknown: open\n", const std::string& graph_token = kToken)
        : kafka(settings_for(cluster)),
          graph("v23.0", kPhoneNumberId, graph_token),
          block(load_block(graph.base_url(), extra)) {
        for (const auto& t : {kInbound, kEvents, kDeadletter, kDelivery, kHuman}) cluster.create_topic(t, 3);
        producer = std::make_unique<Producer>(kafka, registry);
        REQUIRE(producer->warm_up({kInbound, kEvents, kDeadletter, kDelivery, kHuman}, 5s));
        edge_settings.host = "127.0.0.1";
        edge_settings.port = 0;
        edge_settings.threads = 1;
        start();
    }
    ~Harness() { stop(); }

    void start() {
        edge_registry = std::make_unique<metrics::Registry>();
        edge = std::make_unique<edge::EdgeServer>(edge_settings, *edge_registry);
        const connectors::ConnectorContext ctx{block, kafka, *producer, registry, *edge, state.path()};
        connector = connectors::whatsapp::connector_type().create(ctx);
        connector->start();
        edge->start();
        dispatcher = std::make_unique<connectors::DeliveryDispatcher>(
            kafka, connectors::DispatcherOptions{}, std::vector<std::pair<std::string, connectors::Connector*>>{
                                                        {"wa", connector.get()}},
            *producer, registry);
    }
    void stop() {
        if (dispatcher) dispatcher->stop();
        dispatcher.reset();
        if (edge) edge->stop();
        connector.reset();
        edge.reset();
    }

    // A reply as the pipeline writes it to the delivery topic.
    static envelope::Envelope reply(const std::string& text, const std::string& to = kCustomer) {
        envelope::Envelope e;
        e.id = envelope::new_id();
        e.channel = {"whatsapp", "wa"};
        e.direction = envelope::Direction::outbound;
        e.sender.id = "whatsapp:16505553333";
        envelope::Participant p;
        p.id = "whatsapp:" + to;
        e.recipient = p;
        e.content.type = envelope::ContentType::text;
        e.content.text = text;
        e.received_at = envelope::now_ms();
        e.customer_id = "cust-" + to;
        return e;
    }
    void deliver(const envelope::Envelope& e) {
        Record rec = envelope::encode(e, e.customer_id.value_or(""));
        rec.topic = kDelivery;
        produce_raw(std::move(rec));
    }
    void produce_raw(Record rec) {
        Deliveries d;
        producer->produce(std::move(rec), d.callback());
        REQUIRE(wait_until([&] { return d.size() == 1; }, 10s));
        REQUIRE(d.ok() == 1);
    }

    // A signed inbound text from `from`, sent now: opens the service window.
    void inbound_from(const std::string& from) {
        const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        const std::string body =
            R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{)"
            R"("messaging_product":"whatsapp","metadata":{"display_phone_number":"16505553333","phone_number_id":")" +
            std::string(kPhoneNumberId) + R"("},"contacts":[{"profile":{"name":"Ana"},"wa_id":")" + from +
            R"("}],"messages":[{"from":")" + from + R"(","id":"wamid.in.)" + from + std::to_string(now) +
            R"(","timestamp":")" + std::to_string(now) + R"(","type":"text","text":{"body":"hello"}}]}}]}]})";
        connectors::meta::WebhookSigner signer(kAppSecret);
        RawClient c(edge->port());
        REQUIRE(c.send(omnibus::test::post("/webhooks/wa", body,
                                           "X-Hub-Signature-256: " + signer.sign(body) + "\r\n")));
        std::optional<HttpResponse> r = c.read_response(10s);
        REQUIRE(r.has_value());
        REQUIRE(r->status == 200);
    }

    int64_t count(const std::string& topic) const { return high_watermark_total(kafka, topic, 3); }

    std::vector<Line> read(const std::string& topic) const {
        const std::string out =
            run("kcat -C -b " + kafka.brokers + " -t " + topic + " -o beginning -e -q -f '%k\\t%h\\t%s\\n' 2>&1");
        std::vector<Line> lines;
        for (const auto& l : split(out, '\n')) {
            if (l.empty()) continue;
            const auto parts = split(l, '\t');
            REQUIRE(parts.size() >= 3);
            lines.push_back({parts[0], parts[1], parts[2]});
        }
        return lines;
    }

    uint64_t metric(const std::string& name, const metrics::Labels& labels) {
        return registry.counter(name, "", labels).value();
    }
};

}  // namespace

TEST_CASE("a text reply goes out with the bearer token and links its statuses to the envelope") {
    Harness h;
    const envelope::Envelope e = Harness::reply("Your order 1042 ships today 📦");
    h.deliver(e);
    REQUIRE(wait_until([&] { return h.count(kEvents) == 1; }, 15s));
    const auto got = h.graph.received();
    REQUIRE(got.size() == 1);
    CHECK(got[0].to == kCustomer);
    CHECK(got[0].type == "text");
    CHECK(got[0].text == "Your order 1042 ships today 📦");
    CHECK(got[0].callback_data == e.id);
    CHECK(h.graph.unauthorized() == 0);
    CHECK(h.graph.invalid() == 0);

    const auto events = h.read(kEvents);
    REQUIRE(events.size() == 1);
    INFO(events[0].value);
    CHECK(events[0].has("ce_type=com.omnibus.message.status"));
    CHECK(events[0].has("\"status\":\"accepted\""));
    CHECK(events[0].has("\"message_id\":\"wamid.fake1\""));
    CHECK(events[0].has("\"callback_data\":\"" + e.id + "\""));
    CHECK(events[0].key == std::string("whatsapp:") + kCustomer);
    CHECK(h.count(kDeadletter) == 0);
    CHECK(h.metric("omnibus_channel_messages_out_total", {{"channel", "wa"}}) == 1);
}

TEST_CASE("429 with Retry-After and 500s are retried, and one customer's replies keep their order") {
    Harness h;
    auto limited = FakeGraphApi::graph_error(429, 130429, "Rate limit hit", "OAuthException");
    limited.headers = {{"Retry-After", "1"}};
    h.graph.fail_next(1, limited);
    h.graph.fail_next(2, FakeGraphApi::graph_error(500, 1, "An unknown error occurred", "OAuthException", true));
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::string> texts = {"first", "second", "third", "fourth"};
    for (const auto& t : texts) h.deliver(Harness::reply(t));
    REQUIRE(wait_until([&] { return h.count(kEvents) == 4; }, 20s));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed >= 1s);  // Retry-After: 1 was honoured

    std::vector<std::string> accepted;
    for (const auto& r : h.graph.received())
        if (r.status == 200) accepted.push_back(r.text);
    CHECK(accepted == texts);
    CHECK(h.graph.received().size() == 7);  // 3 failures + 4 successes
    CHECK(h.metric("omnibus_channel_send_retries_total", {{"channel", "wa"}}) == 3);
    CHECK(h.count(kDeadletter) == 0);
}

TEST_CASE("other customers' replies are not held up by one customer's retries") {
    Harness h("window_unknown: open\nretry_backoff: 3s\nretry_backoff_max: 3s\n");
    auto busy = FakeGraphApi::graph_error(503, 2, "Service temporarily unavailable", "OAuthException", true);
    h.graph.fail_next(1, busy);
    h.deliver(Harness::reply("to the first customer", "4915100000001"));
    REQUIRE(wait_until([&] { return h.graph.received().size() >= 1; }, 10s));
    h.deliver(Harness::reply("to the second customer", "4915100000002"));
    REQUIRE(wait_until([&] { return h.count(kEvents) == 2; }, 20s));
    std::vector<std::string> order;
    for (const auto& r : h.graph.received())
        if (r.status == 200) order.push_back(r.to);
    REQUIRE(order.size() == 2);
    CHECK(order[0] == "4915100000002");  // sent while the first one waited to retry
}

TEST_CASE("a permanent error dead-letters the reply with the reason and reports a failed status") {
    Harness h;
    h.graph.fail_next(1, FakeGraphApi::graph_error(400, 131026, "Message undeliverable", "OAuthException"));
    const envelope::Envelope e = Harness::reply("are you there?");
    h.deliver(e);
    REQUIRE(wait_until([&] { return h.count(kDeadletter) == 1 && h.count(kEvents) == 1; }, 15s));
    CHECK(h.graph.received().size() == 1);  // not retried

    const auto dl = h.read(kDeadletter);
    REQUIRE(dl.size() == 1);
    INFO(dl[0].headers);
    CHECK(dl[0].has("omnibus_failure=recipient"));
    CHECK(dl[0].has("omnibus_graph_code=131026"));
    CHECK(dl[0].has("omnibus_error=Graph API 400: Message undeliverable"));
    CHECK(dl[0].has("omnibus_channel=wa"));
    CHECK(dl[0].has("ce_id=" + e.id));            // the original record, as it was
    CHECK(dl[0].has("\"are you there?\""));
    const auto ev = h.read(kEvents);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].has("\"status\":\"failed\""));
    CHECK(ev[0].has("\"code\":131026"));
    CHECK(ev[0].has("\"callback_data\":\"" + e.id + "\""));
    CHECK(h.metric("omnibus_channel_send_failures_total", {{"channel", "wa"}, {"reason", "recipient"}}) == 1);
}

TEST_CASE("retries give up after max_retries, and a timeout counts as a retryable failure") {
    Harness h("window_unknown: open\nmax_retries: 2\nrequest_timeout: 300ms\n");
    FakeGraphApi::Answer slow;
    slow.delay = 1s;
    slow.status = 200;
    slow.body = R"({"messages":[{"id":"wamid.too-late"}]})";
    h.graph.fail_next(1, slow);
    h.graph.fail_next(2, FakeGraphApi::graph_error(500, 1, "An unknown error occurred", "OAuthException", true));
    h.deliver(Harness::reply("hello?"));
    REQUIRE(wait_until([&] { return h.count(kDeadletter) == 1; }, 20s));
    const auto dl = h.read(kDeadletter);
    REQUIRE(dl.size() == 1);
    INFO(dl[0].headers);
    CHECK(dl[0].has("omnibus_error=gave up after 2 retries"));
    CHECK(dl[0].has("omnibus_failure=transient"));
    CHECK(h.metric("omnibus_channel_send_retries_total", {{"channel", "wa"}}) == 2);
}

TEST_CASE("a wrong access token is not retried: dead letter with failure auth") {
    Harness h("window_unknown: open\n", "the-token-meta-issued");
    h.deliver(Harness::reply("hi"));
    REQUIRE(wait_until([&] { return h.count(kDeadletter) == 1; }, 15s));
    const auto dl = h.read(kDeadletter);
    REQUIRE(dl.size() == 1);
    CHECK(dl[0].has("omnibus_failure=auth"));
    CHECK(dl[0].has("omnibus_graph_code=190"));
    CHECK(h.graph.unauthorized() == 1);  // once: not retried
    CHECK(h.graph.accepted() == 0);
}

TEST_CASE("closed window without a template: the reply goes to the human outbox flagged window_closed") {
    Harness h("");  // window_unknown: closed (default)
    const envelope::Envelope e = Harness::reply("Following up on your order");
    h.deliver(e);
    REQUIRE(wait_until([&] { return h.count(kHuman) == 1 && h.count(kEvents) == 1; }, 15s));
    CHECK(h.graph.received().empty());
    const auto human = h.read(kHuman);
    REQUIRE(human.size() == 1);
    INFO(human[0].value);
    CHECK(human[0].has("\"target\":\"human\""));
    CHECK(human[0].has("\"window_closed\""));
    CHECK(human[0].has("\"Following up on your order\""));
    CHECK(human[0].key == "cust-" + std::string(kCustomer));
    const auto ev = h.read(kEvents);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].has("\"status\":\"window_closed\""));
    CHECK(ev[0].has("\"code\":131047"));
    CHECK(h.metric("omnibus_channel_window_closed_total", {{"channel", "wa"}, {"action", "human_outbox"}}) == 1);
}

TEST_CASE("the customer's own message opens the window: the free-form reply goes out") {
    Harness h("");  // unknown is closed
    h.inbound_from(kCustomer);
    h.deliver(Harness::reply("Thanks for writing!"));
    REQUIRE(wait_until([&] { return h.graph.accepted() == 1; }, 15s));
    CHECK(h.graph.received().at(0).type == "text");
    CHECK(h.count(kHuman) == 0);

    // The pipeline's verdict wins over what this instance saw.
    envelope::Envelope flagged = Harness::reply("Anything else?");
    flagged.route = envelope::Route{};
    flagged.route->target = envelope::RouteTarget::ai;
    flagged.route->flags = {"outside_24h_window"};
    h.deliver(flagged);
    REQUIRE(wait_until([&] { return h.count(kHuman) == 1; }, 15s));
    CHECK(h.graph.accepted() == 1);
}

TEST_CASE("closed window with a template configured: the template is sent instead") {
    Harness h("closed_window_template:\n  name: follow_up_v2\n  language: en_US\n");
    const envelope::Envelope e = Harness::reply("We miss you");
    h.deliver(e);
    REQUIRE(wait_until([&] { return h.count(kEvents) == 2; }, 15s));
    const auto got = h.graph.received();
    REQUIRE(got.size() == 1);
    CHECK(got[0].type == "template");
    CHECK(got[0].text == "follow_up_v2");
    CHECK(got[0].callback_data == e.id);
    CHECK(h.count(kHuman) == 0);
    int accepted = 0, closed = 0;
    for (const auto& l : h.read(kEvents)) {
        accepted += l.has("\"status\":\"accepted\"");
        closed += l.has("\"status\":\"window_closed\"");
    }
    CHECK(accepted == 1);
    CHECK(closed == 1);
}

TEST_CASE("records no channel can deliver are dead-lettered and do not block the partition") {
    Harness h;
    Record garbage;
    garbage.topic = kDelivery;
    garbage.key = "cust-x";
    garbage.value = "{not json";
    h.produce_raw(garbage);
    envelope::Envelope elsewhere = Harness::reply("for another channel");
    elsewhere.channel.name = "wa-us";
    h.deliver(elsewhere);
    envelope::Envelope location = Harness::reply("");
    location.content.type = envelope::ContentType::location;
    location.content.text.reset();
    location.content.location = envelope::Location{52.52, 13.40, std::nullopt, std::nullopt};
    h.deliver(location);
    h.deliver(Harness::reply("and this one is fine"));
    REQUIRE(wait_until([&] { return h.count(kDeadletter) == 3 && h.graph.accepted() == 1; }, 20s));
    std::map<std::string, int> reasons;
    for (const auto& l : h.read(kDeadletter)) {
        if (l.has("omnibus_error_code=unknown_channel")) ++reasons["unknown_channel"];
        if (l.has("omnibus_error_code=undecodable")) ++reasons["undecodable"];
        if (l.has("omnibus_failure=invalid_request")) ++reasons["invalid_request"];
    }
    CHECK(reasons == std::map<std::string, int>{{"invalid_request", 1}, {"undecodable", 1}, {"unknown_channel", 1}});
}

TEST_CASE("a reply waiting for a retry when the channel stops is delivered after the restart") {
    Harness h("window_unknown: open\nretry_backoff: 5s\nretry_backoff_max: 5s\n");
    h.graph.fail_next(1, FakeGraphApi::graph_error(500, 1, "An unknown error occurred", "OAuthException", true));
    h.deliver(Harness::reply("survives a restart"));
    REQUIRE(wait_until([&] { return h.metric("omnibus_channel_send_retries_total", {{"channel", "wa"}}) == 1; }, 10s));
    h.stop();  // the reply waits 5 s for its retry: abandoned, not committed
    CHECK(h.graph.accepted() == 0);
    h.start();
    REQUIRE(wait_until([&] { return h.graph.accepted() == 1; }, 20s));
    CHECK(h.graph.received().back().text == "survives a restart");
    std::this_thread::sleep_for(500ms);
    CHECK(h.graph.accepted() == 1);  // once
}

TEST_CASE("a reply whose request is on the wire when the channel stops is not retried here but after the restart") {
    Harness h("window_unknown: open\nretry_backoff: 5s\nretry_backoff_max: 5s\n");
    auto slow_failure = FakeGraphApi::graph_error(500, 1, "An unknown error occurred", "OAuthException", true);
    slow_failure.delay = 1500ms;
    h.graph.fail_next(1, slow_failure);
    h.deliver(Harness::reply("on the wire at shutdown"));
    REQUIRE(wait_until([&] { return h.graph.arrived() == 1; }, 10s));
    // The partition is revoked while the request waits for its answer. The 500 that follows
    // gives the reply back to Kafka at once: no retry from this instance during the stop.
    h.stop();
    CHECK(h.graph.accepted() == 0);
    CHECK(h.graph.arrived() == 1);
    h.start();
    REQUIRE(wait_until([&] { return h.graph.accepted() == 1; }, 20s));
    CHECK(h.graph.received().back().text == "on the wire at shutdown");
    std::this_thread::sleep_for(500ms);
    CHECK(h.graph.accepted() == 1);
}

TEST_CASE("an erased customer's window is forgotten: their next reply meets window_unknown, also after a restart") {
    Harness h("");  // window_unknown: closed (the default)
    const std::string erased = kCustomer, by_phone = "4915100000002", kept = "4915100000003";
    for (const auto& from : {erased, by_phone, kept}) h.inbound_from(from);
    h.deliver(Harness::reply("window open", erased));
    REQUIRE(wait_until([&] { return h.graph.accepted() == 1; }, 15s));

    // What the daemon hands every channel when an erase applies: the customer's identities.
    const std::vector<std::string> identities{"email:ana@example.com", "whatsapp:" + erased, "phone:+" + erased};
    h.connector->forget(identities);
    h.connector->forget(std::vector<std::string>{"phone:+" + by_phone});
    CHECK(h.metric("omnibus_channel_windows_forgotten_total", {{"channel", "wa"}}) == 2);
    h.connector->forget(identities);  // replayed: nothing left to remove
    h.connector->forget(std::vector<std::string>{"whatsapp:4915100000009", "shop:c-1"});
    CHECK(h.metric("omnibus_channel_windows_forgotten_total", {{"channel", "wa"}}) == 2);

    h.deliver(Harness::reply("after the erasure", erased));
    h.deliver(Harness::reply("after the erasure too", by_phone));
    h.deliver(Harness::reply("not erased", kept));
    REQUIRE(wait_until([&] { return h.count(kHuman) == 2 && h.graph.accepted() == 2; }, 15s));
    CHECK(h.graph.received().back().to == kept);
    for (const auto& line : h.read(kHuman)) {
        INFO(line.value);
        CHECK(line.has("\"window_closed\""));
        CHECK((line.key == "cust-" + erased || line.key == "cust-" + by_phone));
    }

    // The deletion is on disk: a restarted channel does not bring the window back.
    h.stop();
    h.start();
    h.deliver(Harness::reply("after the restart", erased));
    h.deliver(Harness::reply("still open", kept));
    REQUIRE(wait_until([&] { return h.count(kHuman) == 3 && h.graph.accepted() == 3; }, 20s));
    CHECK(h.graph.received().back().to == kept);
    const auto human = h.read(kHuman);  // three partitions: no order across them
    CHECK(std::count_if(human.begin(), human.end(), [](const Line& l) { return l.has("after the restart"); }) == 1);
}
