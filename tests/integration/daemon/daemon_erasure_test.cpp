// Erasure reaches every instance's channels: two omnibusd processes on one cluster, the first
// with a WhatsApp channel that receives the customer's webhook (their 24-hour service window
// opens there), the second without channels serving DELETE /v1/customers/<id>. The first
// applies the erase from the identity log and forgets the window: a reply for that number
// then meets window_unknown (closed) and goes to the human outbox instead of the Graph API.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <signal.h>

#include <chrono>
#include <sstream>
#include <string>

#include "daemon_fixture.h"
#include "kafka/embedded_cluster.h"
#include "kafka/topics.h"
#include "support/cluster_topics.h"
#include "support/fake_graph_api.h"
#include "support/meta_signature.h"
#include "support/metric_value.h"

using namespace omnibus;
using namespace omnibus::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "erasure-test-secret";
constexpr const char* kToken = "EAAG-erasure-token";
constexpr const char* kPhoneNumberId = "106540352242922";
constexpr const char* kWaId = "4915112345678";
constexpr const char* kForgotten = R"(omnibus_channel_windows_forgotten_total{channel="wa"})";

std::string sign(const std::string& body) { return omnibus::test::meta_signature(kSecret, body); }

// One series of the daemon's /metrics; -1 when absent or unreadable.
double metric(Daemon& d, const std::string& series) {
    auto r = d.get("/metrics");
    if (!r || r->status != 200) return -1;
    return omnibus::test::metric_value(r->body, series);
}

// A reply as the pipeline writes it to omnibus.delivery, produced by kcat.
void deliver(const std::string& bootstrap, const std::string& id, const std::string& customer,
             const std::string& text) {
    const std::string reply = R"({"schema_version":1,"id":")" + id +
                              R"(","channel":{"type":"whatsapp","name":"wa"},"direction":"outbound",)"
                              R"("sender":{"id":"whatsapp:16505553333"},"recipient":{"id":"whatsapp:)" +
                              std::string(kWaId) + R"("},"content":{"type":"text","text":")" + text +
                              R"("},"received_at":"2026-11-25T12:00:00.000Z","customer_id":")" + customer + R"("})";
    TempFile value(reply + "\n", ".json");
    int rc = -1;
    const std::string out = run_capture("kcat -P -b " + bootstrap + " -t omnibus.delivery -k " + customer +
                                            " -H ce_specversion=1.0 -H ce_id=" + id +
                                            " -H ce_source=/omnibus/channels/wa -H ce_type=com.omnibus.message.outbound"
                                            " -H ce_time=2026-11-25T12:00:00.000Z -H content-type=application/json < " +
                                            value.path() + " 2>&1",
                                        &rc);
    INFO(out);
    REQUIRE(rc == 0);
}

}  // namespace

TEST_CASE("an erasure served by one instance makes the other forget the customer's WhatsApp window",
          "[daemon][erasure][integration]") {
    kafka::EmbeddedCluster cluster(1);
    create_omnibus_topics(cluster, 2);
    const std::string bootstrap = cluster.bootstrap_servers();
    FakeGraphApi graph("v23.0", kPhoneNumberId, kToken);

    const std::string common = R"(
state_dir: /tmp/omnibus-test-state
admin:
  listen: 127.0.0.1:0
edge:
  listen: 127.0.0.1:0
kafka:
  brokers: )" + bootstrap + R"(
  partitions: 2
  replication_factor: 1
)";
    // window_unknown is left at its default, closed: an unknown window is not answered free-form.
    Daemon with_channel(common + R"(channels:
  - name: wa
    type: whatsapp
    app_secret: ${env:WA_SECRET}
    verify_token: v
    access_token: ${env:WA_TOKEN}
    phone_number_id: ")" + kPhoneNumberId + R"("
    graph_api_url: )" + graph.base_url() + "\n",
                        {std::string("WA_SECRET=") + kSecret, std::string("WA_TOKEN=") + kToken});
    Daemon admin_only(common + "channels: []\n");
    REQUIRE(with_channel.admin_port() > 0);
    REQUIRE(admin_only.admin_port() > 0);
    INFO("with the channel:\n" << with_channel.output());
    INFO("admin only:\n" << admin_only.output());
    REQUIRE(with_channel.wait_ready(30s));
    REQUIRE(admin_only.wait_ready(30s));
    REQUIRE(with_channel.wait_log("\"msg\":\"delivering replies\"", 10s));

    // The customer writes to the instance with the channel: their window opens there.
    const auto now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string webhook =
        R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{)"
        R"("messaging_product":"whatsapp","metadata":{"display_phone_number":"16505553333","phone_number_id":")" +
        std::string(kPhoneNumberId) + R"("},"contacts":[{"profile":{"name":"Ana"},"wa_id":")" + kWaId +
        R"("}],"messages":[{"from":")" + kWaId + R"(","id":"wamid.erasure.1","timestamp":")" + std::to_string(now) +
        R"(","type":"text","text":{"body":"Please delete my data"}}]}}]}]})";
    httplib::Client edge("127.0.0.1", with_channel.edge_port());
    auto posted = edge.Post("/webhooks/wa", {{"X-Hub-Signature-256", sign(webhook)}}, webhook, "application/json");
    REQUIRE(posted);
    REQUIRE(posted->status == 200);

    // The pipeline (on either instance) gives the number a customer; the other instance knows it.
    std::string customer;
    const std::string identity_path = std::string("/v1/identities/whatsapp%3A") + kWaId;
    REQUIRE(wait_until(
        [&] {
            auto r = admin_only.get(identity_path);
            if (!r || r->status != 200) return false;
            rapidjson::Document d;
            d.Parse(r->body.c_str());
            if (d.HasParseError() || !d.IsObject() || !d.HasMember("customer_id")) return false;
            customer = d["customer_id"].GetString();
            return true;
        },
        20s, 50ms));

    // Before the erasure the window is open: a reply goes out free-form.
    deliver(bootstrap, "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c01", customer, "We are on it.");
    REQUIRE(wait_until([&] { return graph.accepted() == 1; }, 20s));
    CHECK(metric(with_channel, kForgotten) == 0);

    httplib::Client admin("127.0.0.1", admin_only.admin_port());
    admin.set_read_timeout(std::chrono::seconds(10));
    auto erased = admin.Delete(("/v1/customers/" + customer).c_str());
    REQUIRE(erased);
    INFO(erased->body);
    REQUIRE(erased->status == 200);

    // The instance that did not serve the DELETE applies it from the identity log and forgets.
    REQUIRE(wait_until([&] { return metric(with_channel, kForgotten) == 1; }, 15s, 50ms));
    auto gone = with_channel.get(identity_path);
    REQUIRE(gone);
    CHECK(gone->status == 404);

    // A reply for that number now meets window_unknown (closed): the human outbox, not the Graph API.
    const std::string after = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c02";
    deliver(bootstrap, after, customer, "One more thing.");
    std::string human;
    REQUIRE(wait_until(
        [&] {
            human = run_capture("kcat -C -b " + bootstrap +
                                " -t omnibus.outbox.human -o beginning -e -q -f '%s\\n' 2>/dev/null");
            return human.find(after) != std::string::npos;
        },
        20s, 200ms));
    std::string rerouted;
    {
        std::istringstream lines(human);
        for (std::string line; std::getline(lines, line);)
            if (line.find(after) != std::string::npos) rerouted = line;
    }
    INFO(rerouted);
    CHECK(rerouted.find("\"window_closed\"") != std::string::npos);
    CHECK(graph.accepted() == 1);

    // One log line says so, without the number.
    std::string said;
    {
        std::istringstream lines(with_channel.output());
        for (std::string line; std::getline(lines, line);)
            if (line.find("service windows forgotten") != std::string::npos) said = line;
    }
    CHECK_FALSE(said.empty());
    CHECK(said.find(kWaId) == std::string::npos);

    with_channel.process().signal(SIGTERM);
    admin_only.process().signal(SIGTERM);
    CHECK(with_channel.process().wait_exit(10s));
    CHECK(admin_only.process().wait_exit(10s));
}
