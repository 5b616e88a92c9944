// The WhatsApp channel's inbound path end to end: signed webhooks over real
// HTTP (loopback) to an EdgeServer, the connector, a real Kafka protocol
// cluster (librdkafka's mock, over TCP); results counted with high watermarks
// and read back with kcat.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "config/loader.h"
#include "connectors/meta/webhook_signature.h"
#include "connectors/registry.h"
#include "connectors/whatsapp/whatsapp_connector.h"
#include "connectors/whatsapp/whatsapp_spec.h"
#include "edge/edge_server.h"
#include "integration/edge/http_client.h"
#include "integration/kafka/kafka_test_support.h"
#include "metrics/metrics.h"
#include "support/scratch_dir.h"
#include "whatsapp_channel_support.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using omnibus::test::HttpResponse;
using omnibus::test::RawClient;
using Clock = std::chrono::steady_clock;
namespace meta = omnibus::connectors::meta;

namespace {

constexpr const char* kAppSecret = "test-app-secret";
constexpr const char* kVerifyToken = "verify-me";
const std::string kInbound = "omnibus.inbound";
const std::string kEvents = "omnibus.events";
const std::string kDeadletter = "omnibus.deadletter";

std::string sample(const std::string& name) {
    std::ifstream in(std::string(OMNIBUS_SOURCE_DIR) + "/tests/data/whatsapp/" + name, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
    return s;
}

config::Section load_block(const std::string& extra) {
    config::LoadOptions o;
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
        if (name == "WA_SECRET") return kAppSecret;
        if (name == "WA_VERIFY") return kVerifyToken;
        if (name == "WA_TOKEN") return "EAAG-token";
        return std::nullopt;
    };
    const config::LoadResult r = config::load_string(
        "channels:\n  - name: wa\n    type: whatsapp\n"
        "    app_secret: ${env:WA_SECRET}\n    verify_token: ${env:WA_VERIFY}\n    access_token: ${env:WA_TOKEN}\n"
        "    phone_number_id: \"106540352242922\"\n" +
            extra,
        "omnibus.yaml", connectors::whatsapp::testing::root_spec(), o);
    INFO(r.report());
    REQUIRE(r.ok());
    return r.config->blocks("channels").at(0);
}

// Kafka (mock cluster + the daemon's producer) for the whole test; the edge and
// the connector can be torn down and rebuilt on the same state directory.
struct Harness {
    EmbeddedCluster cluster;
    KafkaSettings kafka;
    metrics::Registry registry;
    std::unique_ptr<Producer> producer;
    omnibus::test::ScratchDir state{"omnibus-wa"};
    config::Section block;
    meta::WebhookSigner signer{kAppSecret};
    edge::EdgeSettings edge_settings;
    std::unique_ptr<metrics::Registry> edge_registry;
    std::unique_ptr<edge::EdgeServer> edge;
    std::unique_ptr<connectors::Connector> connector;

    explicit Harness(const std::string& extra_block = "", std::chrono::milliseconds message_timeout = 3000ms)
        : kafka(make_settings(cluster, message_timeout)), block(load_block(extra_block)) {
        for (const auto& t : {kInbound, kEvents, kDeadletter}) cluster.create_topic(t, 3);
        producer = std::make_unique<Producer>(kafka, registry);
        REQUIRE(producer->warm_up({kInbound, kEvents, kDeadletter}, 5s));
        edge_settings.host = "127.0.0.1";
        edge_settings.port = 0;
        edge_settings.threads = 2;
        edge_settings.request_timeout = 10s;
        edge_settings.max_body_bytes = 4 << 20;
        start_channel();
    }
    ~Harness() { stop_channel(); }

    static KafkaSettings make_settings(const EmbeddedCluster& c, std::chrono::milliseconds message_timeout) {
        KafkaSettings s = settings_for(c);
        s.message_timeout = message_timeout;
        s.client = {{"reconnect.backoff.max.ms", Secret("300")}};
        return s;
    }

    void start_channel() {
        edge_registry = std::make_unique<metrics::Registry>();
        edge = std::make_unique<edge::EdgeServer>(edge_settings, *edge_registry);
        const connectors::ConnectorContext ctx{block, kafka, *producer, registry, *edge, state.path()};
        connector = connectors::whatsapp::connector_type().create(ctx);
        connector->start();
        edge->start();
    }
    void stop_channel() {
        if (edge) edge->stop();
        connector.reset();
        edge.reset();
    }

    HttpResponse send(const std::string& raw, std::chrono::milliseconds timeout = 15s) {
        RawClient c(edge->port());
        REQUIRE(c.send(raw));
        std::optional<HttpResponse> r = c.read_response(timeout);
        REQUIRE(r.has_value());
        return *r;
    }
    HttpResponse post_signed(const std::string& body) {
        return send(omnibus::test::post("/webhooks/wa", body, "X-Hub-Signature-256: " + signer.sign(body) + "\r\n"));
    }

    int64_t count(const std::string& topic) const { return high_watermark_total(kafka, topic, 3); }
    struct Counts {
        int64_t inbound, events, deadletter;
        friend bool operator==(const Counts&, const Counts&) = default;
    };
    Counts counts() const { return {count(kInbound), count(kEvents), count(kDeadletter)}; }

    uint64_t metric(const std::string& name, const metrics::Labels& labels) {
        return registry.counter(name, "", labels).value();
    }
};

}  // namespace

TEST_CASE("GET handshake: the challenge with the right token, 403 otherwise") {
    Harness h;
    HttpResponse ok = h.send(omnibus::test::get(
        "/webhooks/wa?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"));
    CHECK(ok.status == 200);
    CHECK(ok.body == "1158201444");
    CHECK(ok.header("Content-Type").starts_with("text/plain"));

    HttpResponse bad = h.send(omnibus::test::get(
        "/webhooks/wa?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444"));
    CHECK(bad.status == 403);
    CHECK(bad.body.find("1158201444") == std::string::npos);
    CHECK(h.send(omnibus::test::get("/webhooks/wa")).status == 403);
}

TEST_CASE("signatures: valid → 200 and produced, missing, malformed or wrong → 401 and nothing on Kafka") {
    Harness h;
    const std::string body = sample("text.json");
    const auto before = h.counts();

    HttpResponse missing = h.send(omnibus::test::post("/webhooks/wa", body));
    CHECK(missing.status == 401);
    HttpResponse malformed = h.send(omnibus::test::post("/webhooks/wa", body, "X-Hub-Signature-256: sha256=abc\r\n"));
    CHECK(malformed.status == 401);
    HttpResponse other_secret = h.send(omnibus::test::post(
        "/webhooks/wa", body, "X-Hub-Signature-256: " + meta::WebhookSigner("other").sign(body) + "\r\n"));
    CHECK(other_secret.status == 401);
    // Signed, then one byte of the body changed.
    std::string tampered = body;
    tampered[tampered.find("sneakers")] = 'S';
    HttpResponse changed = h.send(omnibus::test::post("/webhooks/wa", tampered,
                                                      "X-Hub-Signature-256: " + h.signer.sign(body) + "\r\n"));
    CHECK(changed.status == 401);
    CHECK(changed.body.find(kAppSecret) == std::string::npos);
    CHECK(h.counts() == before);
    CHECK(h.metric("omnibus_channel_rejected_total", {{"channel", "wa"}, {"reason", "signature_missing"}}) == 1);
    CHECK(h.metric("omnibus_channel_rejected_total", {{"channel", "wa"}, {"reason", "signature_malformed"}}) == 1);
    CHECK(h.metric("omnibus_channel_rejected_total", {{"channel", "wa"}, {"reason", "signature_mismatch"}}) == 2);

    HttpResponse good = h.post_signed(body);
    INFO(good.body);
    CHECK(good.status == 200);
    CHECK(h.count(kInbound) == before.inbound + 1);
    CHECK(h.metric("omnibus_channel_messages_in_total", {{"channel", "wa"}}) == 1);
}

TEST_CASE("every sample payload produces its messages on inbound, its statuses and updates on events, with ce_ headers") {
    Harness h;
    // file → {messages on inbound, statuses + account updates on events}
    const std::map<std::string, std::pair<int, int>> expected = {
        {"audio.json", {1, 0}},         {"bsuid_username.json", {1, 0}},
        {"bsuid_with_phone.json", {1, 0}}, {"button.json", {1, 0}},
        {"contacts.json", {1, 0}},      {"document.json", {1, 0}},
        {"image.json", {1, 0}},         {"interactive_button_reply.json", {1, 0}},
        {"interactive_list_reply.json", {1, 0}}, {"interactive_nfm_reply.json", {1, 0}},
        {"location.json", {1, 0}},      {"multi.json", {3, 3}},
        {"order.json", {1, 0}},         {"reaction.json", {1, 0}},
        {"status_delivered.json", {0, 1}}, {"status_failed.json", {0, 1}},
        {"status_read.json", {0, 1}},   {"status_sent.json", {0, 1}},
        {"sticker.json", {1, 0}},       {"system.json", {1, 0}},
        {"text.json", {1, 0}},          {"text_referral.json", {1, 0}},
        {"text_reply.json", {1, 0}},    {"unsupported.json", {1, 0}},
        {"video.json", {1, 0}},         {"template_status_update.json", {0, 1}},
    };
    const int updates = 2;  // multi.json and template_status_update.json carry one each
    // Every sample in the folder is listed: a new sample needs its expectation here.
    int files = 0;
    for (const auto& f : std::filesystem::directory_iterator(std::string(OMNIBUS_SOURCE_DIR) + "/tests/data/whatsapp"))
        files += f.path().extension() == ".json";
    CHECK(files == static_cast<int>(expected.size()));

    int64_t messages = 0, statuses = 0;
    for (const auto& [file, counts] : expected) {
        INFO(file);
        const auto before = h.counts();
        HttpResponse r = h.post_signed(sample(file));
        INFO(r.body);
        REQUIRE(r.status == 200);
        const auto after = h.counts();
        CHECK(after.inbound - before.inbound == counts.first);
        CHECK(after.events - before.events == counts.second);
        CHECK(after.deadletter == before.deadletter);
        messages += counts.first;
        statuses += counts.second;
    }
    CHECK(h.metric("omnibus_channel_messages_in_total", {{"channel", "wa"}}) == static_cast<uint64_t>(messages));
    CHECK(h.metric("omnibus_channel_statuses_in_total", {{"channel", "wa"}}) ==
          static_cast<uint64_t>(statuses - updates));
    CHECK(h.metric("omnibus_channel_updates_in_total", {{"channel", "wa"}}) == static_cast<uint64_t>(updates));

    // kcat, an independent client: every record is a CloudEvent of the right type.
    const std::string inbound = run("kcat -C -b " + h.kafka.brokers + " -t " + kInbound +
                                    " -o beginning -e -q -f '%h|KEY=%k\\n' 2>&1");
    const auto lines_in = split(inbound, '\n');
    int seen = 0;
    for (const auto& line : lines_in) {
        if (line.empty()) continue;
        ++seen;
        INFO(line);
        CHECK(line.find("ce_specversion=1.0") != std::string::npos);
        CHECK(line.find("ce_id=") != std::string::npos);
        CHECK(line.find("ce_type=com.omnibus.message.inbound") != std::string::npos);
        CHECK(line.find("ce_source=/omnibus/channels/wa") != std::string::npos);
        CHECK(line.find("ce_time=") != std::string::npos);
        CHECK(line.find("content-type=application/json") != std::string::npos);
        CHECK((line.find("KEY=whatsapp:") != std::string::npos || line.find("KEY=whatsapp_bsuid:") != std::string::npos));
    }
    CHECK(seen == messages);
    const std::string events = run("kcat -C -b " + h.kafka.brokers + " -t " + kEvents +
                                   " -o beginning -e -q -f '%h\\n' 2>&1");
    seen = 0;
    for (const auto& line : split(events, '\n')) {
        if (line.empty()) continue;
        ++seen;
        INFO(line);
        CHECK((line.find("ce_type=com.omnibus.message.status") != std::string::npos ||
               line.find("ce_type=com.omnibus.channel.update") != std::string::npos));
        CHECK(line.find("ce_id=") != std::string::npos);
    }
    CHECK(seen == statuses);
}

TEST_CASE("dedup: a retried webhook is 200 with nothing new, a partly seen one produces only the new events") {
    Harness h;
    const std::string multi = sample("multi.json");
    REQUIRE(h.post_signed(multi).status == 200);
    const auto first = h.counts();
    CHECK(first.inbound == 3);
    CHECK(first.events == 3);  // 2 statuses + 1 template status update

    HttpResponse again = h.post_signed(multi);
    CHECK(again.status == 200);
    CHECK(again.body == "{\"accepted\":0,\"duplicates\":6}");
    CHECK(h.counts() == first);
    CHECK(h.metric("omnibus_channel_duplicates_total", {{"channel", "wa"}}) == 6);

    // One message id changed: only that message is new.
    HttpResponse partly = h.post_signed(replace_all(multi, "wamid.multi.3", "wamid.multi.4"));
    CHECK(partly.status == 200);
    CHECK(partly.body == "{\"accepted\":1,\"duplicates\":5}");
    CHECK(h.count(kInbound) == first.inbound + 1);
    CHECK(h.count(kEvents) == first.events);
}

TEST_CASE("dedup: two identical webhooks at the same time produce one set of records, both get 200") {
    Harness h;
    const std::string multi = sample("multi.json");
    for (int round = 0; round < 5; ++round) {
        const std::string body = replace_all(multi, "wamid.multi.", "wamid.r" + std::to_string(round) + ".");
        const std::string raw =
            omnibus::test::post("/webhooks/wa", body, "X-Hub-Signature-256: " + h.signer.sign(body) + "\r\n");
        RawClient a(h.edge->port()), b(h.edge->port());
        REQUIRE(a.send(raw));
        REQUIRE(b.send(raw));
        auto ra = a.read_response(15s), rb = b.read_response(15s);
        REQUIRE(ra.has_value());
        REQUIRE(rb.has_value());
        CHECK(ra->status == 200);
        CHECK(rb->status == 200);
    }
    CHECK(h.count(kInbound) == 5 * 3);
    CHECK(h.count(kEvents) == 5 * 2 + 1);  // the template update is the same in every round: once
}

TEST_CASE("dedup survives a restart: new edge and connector on the same state directory") {
    Harness h;
    const std::string text = sample("text.json");
    REQUIRE(h.post_signed(text).status == 200);
    REQUIRE(h.count(kInbound) == 1);

    h.stop_channel();
    h.start_channel();
    HttpResponse retried = h.post_signed(text);
    CHECK(retried.status == 200);
    CHECK(retried.body == "{\"accepted\":0,\"duplicates\":1}");
    CHECK(h.count(kInbound) == 1);
    // A new message still goes through.
    REQUIRE(h.post_signed(sample("image.json")).status == 200);
    CHECK(h.count(kInbound) == 2);
}

TEST_CASE("a body that is not a webhook is 400, an oversize one 413, nothing is produced") {
    Harness h("    max_webhook_body: 2KiB\n");
    const auto before = h.counts();
    HttpResponse not_json = h.post_signed("this is not json");
    CHECK(not_json.status == 400);
    CHECK(not_json.body == "{\"error\":\"not a WhatsApp webhook\"}");
    CHECK(h.post_signed("{\"object\":\"page\",\"entry\":[]}").status == 400);
    CHECK(h.post_signed("[1,2,3]").status == 400);
    HttpResponse big = h.post_signed(sample("multi.json"));  // 3.3 KB > 2 KiB
    CHECK(big.status == 413);
    CHECK(h.counts() == before);
    CHECK(h.metric("omnibus_channel_rejected_total", {{"channel", "wa"}, {"reason", "bad_json"}}) == 1);
    CHECK(h.metric("omnibus_channel_rejected_total", {{"channel", "wa"}, {"reason", "body_too_large"}}) == 1);
}

TEST_CASE("a part that cannot be an event goes to deadletter with the reason, the rest of the body still counts") {
    Harness h;
    const std::string body =
        R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{)"
        R"("messaging_product":"whatsapp","metadata":{"display_phone_number":"16505553333","phone_number_id":"106540352242922"},)"
        R"("messages":[{"from":"16505551234","timestamp":"1714566900","type":"text","text":{"body":"no id"}},)"
        R"({"from":"16505551234","id":"wamid.dl.ok","timestamp":"1714566901","type":"text","text":{"body":"fine"}}]}}]}]})";
    HttpResponse r = h.post_signed(body);
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(h.count(kInbound) == 1);
    CHECK(h.count(kDeadletter) == 1);
    const std::string out = run("kcat -C -b " + h.kafka.brokers + " -t " + kDeadletter +
                                " -o beginning -e -q -f '%h\\n%s\\n' 2>&1");
    INFO(out);
    CHECK(out.find("omnibus_error=") != std::string::npos);
    CHECK(out.find("omnibus_error_code=missing_field") != std::string::npos);
    CHECK(out.find("omnibus_channel=wa") != std::string::npos);
    CHECK(out.find("\"no id\"") != std::string::npos);
    CHECK(h.metric("omnibus_channel_rejected_total", {{"channel", "wa"}, {"reason", "missing_field"}}) == 1);
}

TEST_CASE("broker outage: 503 at once while every broker is down, after recovery a retry lands exactly once") {
    Harness h;  // message_timeout 3 s
    REQUIRE(h.post_signed(sample("text.json")).status == 200);  // connected and warm
    const auto before = h.counts();

    REQUIRE(h.cluster.command([](auto* m) { return rd_kafka_mock_broker_set_down(m, -1); }) ==
            RD_KAFKA_RESP_ERR_NO_ERROR);
    REQUIRE(wait_until([&] { return h.producer->brokers_down(); }, 10s));

    const std::string image = sample("image.json");
    for (int i = 0; i < 3; ++i) {
        const auto t0 = Clock::now();
        HttpResponse r = h.post_signed(image);
        const auto took = Clock::now() - t0;
        CHECK(r.status == 503);
        CHECK(took < 500ms);  // message_timeout is 3 s, the edge's request_timeout 10 s
    }

    REQUIRE(h.cluster.command([](auto* m) { return rd_kafka_mock_broker_set_up(m, -1); }) ==
            RD_KAFKA_RESP_ERR_NO_ERROR);
    // Meta retries; so does this loop, bounded. Probes go through once a second.
    int status = 0;
    const auto deadline = Clock::now() + 30s;
    while (status != 200 && Clock::now() < deadline) {
        HttpResponse r = h.post_signed(image);
        status = r.status;
        if (status != 200) CHECK(status == 503);
        if (status != 200) wait_until([] { return false; }, 200ms);  // pace the retries
    }
    REQUIRE(status == 200);
    CHECK(h.count(kInbound) == before.inbound + 1);
    CHECK(h.post_signed(image).body == "{\"accepted\":0,\"duplicates\":1}");
    CHECK(h.count(kInbound) == before.inbound + 1);
}

TEST_CASE("a request whose records Kafka does not acknowledge is never answered 200, its retry is") {
    Harness h("", 2000ms);
    REQUIRE(h.post_signed(sample("text.json")).status == 200);
    const auto before = h.counts();

    // Every Produce fails (retriable, so librdkafka retries until message_timeout).
    constexpr int kProduceApiKey = 0;
    h.cluster.command([](auto* m) {
        std::vector<rd_kafka_resp_err_t> errs(500, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
        rd_kafka_mock_push_request_errors_array(m, kProduceApiKey, errs.size(), errs.data());
    });
    const std::string multi = sample("multi.json");
    HttpResponse failed = h.post_signed(multi);
    CHECK(failed.status == 503);
    CHECK(h.metric("omnibus_channel_kafka_failures_total", {{"channel", "wa"}}) >= 1);
    CHECK(h.count(kInbound) == before.inbound);

    h.cluster.command([](auto* m) { rd_kafka_mock_clear_request_errors(m, kProduceApiKey); });
    HttpResponse retried = h.post_signed(multi);
    INFO(retried.body);
    CHECK(retried.status == 200);
    CHECK(retried.body == "{\"accepted\":6,\"duplicates\":0}");  // nothing of the failed request was accepted
    CHECK(h.count(kInbound) == before.inbound + 3);
    CHECK(h.count(kEvents) == before.events + 3);
}

TEST_CASE("webhook_rate_limit: beyond it requests get 429 with Retry-After and produce nothing") {
    Harness h("    webhook_rate_limit: 2\n");
    const std::string body = sample("text.json");
    int ok = 0, limited = 0;
    std::string retry_after;
    for (int i = 0; i < 6; ++i) {
        const std::string unique = replace_all(body, "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDU3MDVBMEQzNjQ3QjQA",
                                               "wamid.rate." + std::to_string(i));
        HttpResponse r = h.post_signed(unique);
        if (r.status == 200) ++ok;
        if (r.status == 429) {
            ++limited;
            retry_after = r.header("Retry-After");
        }
    }
    CHECK(ok >= 2);
    CHECK(ok <= 3);  // one second's burst, plus what refilled meanwhile
    CHECK(limited == 6 - ok);
    CHECK_FALSE(retry_after.empty());
    CHECK(h.count(kInbound) == ok);
}

TEST_CASE("account updates (a template approved) go to the events topic once, with the raw payload") {
    Harness h;
    const std::string body = sample("template_status_update.json");
    REQUIRE(h.post_signed(body).status == 200);
    REQUIRE(h.post_signed(body).status == 200);  // Meta's retry: nothing new
    CHECK(h.count(kEvents) == 1);
    CHECK(h.count(kInbound) == 0);
    const std::string out =
        run("kcat -C -b " + h.kafka.brokers + " -t " + kEvents + " -o beginning -e -q -f '%k %h %s\\n' 2>&1");
    INFO(out);
    CHECK(out.find("ce_type=com.omnibus.channel.update") != std::string::npos);
    CHECK(out.find("ce_subject=message_template_status_update") != std::string::npos);
    CHECK(out.find("\"field\":\"message_template_status_update\"") != std::string::npos);
    CHECK(out.find("\"account_id\":\"102290129340398\"") != std::string::npos);
    CHECK(out.find("\"message_template_name\":\"follow_up_v2\"") != std::string::npos);
    CHECK(out.rfind("wa ", 0) == 0);  // keyed by the channel
    CHECK(h.metric("omnibus_channel_updates_in_total", {{"channel", "wa"}}) == 1);
}
