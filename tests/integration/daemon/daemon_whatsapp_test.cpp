// A WhatsApp channel through omnibusd as a user runs it: a signed webhook on
// the public edge lands on omnibus.inbound (read with kcat), and a reply
// written to omnibus.delivery by kcat, an independent client, is delivered to
// a local fake Graph API with the configured token, then reported on
// omnibus.events. Then through the pipeline: the message is routed to the AI outbox
// with its customer, and the AI's reply on omnibus.replies, naming only the customer,
// goes out on the channel the customer wrote on.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <sstream>

#include "daemon_fixture.h"
#include "support/fake_graph_api.h"
#include "support/meta_signature.h"
#include "support/scratch_dir.h"

using namespace omnibus::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* kSecret = "daemon-test-secret";
constexpr const char* kToken = "EAAG-daemon-token";
constexpr const char* kPhoneNumberId = "106540352242922";

std::string sign(const std::string& body) { return omnibus::test::meta_signature(kSecret, body); }

// A reply as downstream writes it to omnibus.replies with kcat: nothing but the customer id,
// the author and the text (the pipeline chooses the channel and recipient).
void produce_reply(const std::string& bootstrap, const std::string& customer, const std::string& id,
                   const std::string& author, const std::string& text, const std::string& source) {
    const std::string reply = R"({"schema_version":1,"id":")" + id + R"(","direction":"outbound","sender":{"id":")" +
                              author + R"("},"customer_id":")" + customer + R"(","content":{"type":"text","text":")" +
                              text + R"("},"received_at":"2026-11-25T12:01:00.000Z"})";
    TempFile value(reply + "\n", ".json");
    int rc = -1;
    const std::string out = run_capture("kcat -P -b " + bootstrap + " -t omnibus.replies -k " + customer +
                                            " -H ce_specversion=1.0 -H ce_id=" + id + " -H ce_source=" + source +
                                            " -H ce_type=com.omnibus.message.outbound"
                                            " -H ce_time=2026-11-25T12:01:00.000Z -H content-type=application/json < " +
                                            value.path() + " 2>&1",
                                        &rc);
    INFO(out);
    REQUIRE(rc == 0);
}

std::string bootstrap_of(const std::string& log) {
    static const std::regex re(R"re("msg":"ready".*"bootstrap_servers":"([^"]+)")re");
    std::smatch m;
    return std::regex_search(log, m, re) ? std::string(m[1]) : "";
}

}  // namespace

TEST_CASE("omnibusd with a WhatsApp channel: webhook in, reply out through the Graph API") {
    FakeGraphApi graph("v23.0", kPhoneNumberId, kToken);
    const ScratchDir state("omnibus-test-wa");  // fresh: the dedup window and windows persist here
    const std::string config = "\nstate_dir: " + state.path() + R"(
log:
  level: info
admin:
  listen: 127.0.0.1:0
edge:
  listen: 127.0.0.1:0
kafka:
  embedded: true
  partitions: 2
channels:
  - name: wa
    type: whatsapp
    app_secret: ${env:WA_SECRET}
    verify_token: v
    access_token: ${env:WA_TOKEN}
    phone_number_id: ")" + std::string(kPhoneNumberId) + R"("
    language: en
    graph_api_url: )" + graph.base_url() + "\n";
    Daemon d(config, {std::string("WA_SECRET=") + kSecret, std::string("WA_TOKEN=") + kToken});
    REQUIRE(d.admin_port() > 0);
    REQUIRE(d.wait_ready(5s));
    INFO(d.output());
    REQUIRE(d.wait_log("\"msg\":\"delivering replies\""));
    const std::string bootstrap = bootstrap_of(d.output());
    REQUIRE_FALSE(bootstrap.empty());
    CHECK(d.output().find(kToken) == std::string::npos);  // secrets never reach the log

    // The customer writes: the webhook is accepted and their service window opens.
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::string webhook =
        R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{)"
        R"("messaging_product":"whatsapp","metadata":{"display_phone_number":"16505553333","phone_number_id":")" +
        std::string(kPhoneNumberId) +
        R"("},"contacts":[{"profile":{"name":"Maria"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234",)"
        R"("id":"wamid.daemon.1","timestamp":")" +
        std::to_string(now) + R"(","type":"text","text":{"body":"Where is my order 1042?"}}]}}]}]})";
    httplib::Client edge("127.0.0.1", d.edge_port());
    auto r = edge.Post("/webhooks/wa", {{"X-Hub-Signature-256", sign(webhook)}}, webhook, "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
    auto bad = edge.Post("/webhooks/wa", {{"X-Hub-Signature-256", sign(webhook + " ")}}, webhook, "application/json");
    REQUIRE(bad);
    CHECK(bad->status == 401);
    int rc = -1;
    const std::string inbound = run_capture(
        "kcat -C -b " + bootstrap + " -t omnibus.inbound -o beginning -e -q -f '%k %s\\n' 2>&1", &rc);
    CHECK(rc == 0);
    CHECK(inbound.find("whatsapp:16505551234 ") != std::string::npos);
    CHECK(inbound.find("Where is my order 1042?") != std::string::npos);

    // Downstream answers: kcat writes the reply envelope to omnibus.delivery.
    const std::string id = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
    const std::string reply = R"({"schema_version":1,"id":")" + id +
                              R"(","channel":{"type":"whatsapp","name":"wa"},"direction":"outbound",)"
                              R"("sender":{"id":"whatsapp:16505553333"},"recipient":{"id":"whatsapp:16505551234"},)"
                              R"("content":{"type":"text","text":"Order 1042 ships today."},)"
                              R"("received_at":"2026-11-25T12:00:00.000Z","customer_id":"c-1"})";
    TempFile value(reply + "\n", ".json");
    run_capture("kcat -P -b " + bootstrap + " -t omnibus.delivery -k c-1 -H ce_specversion=1.0 -H ce_id=" + id +
                    " -H ce_source=/omnibus/channels/wa -H ce_type=com.omnibus.message.outbound"
                    " -H ce_time=2026-11-25T12:00:00.000Z -H content-type=application/json < " +
                    value.path() + " 2>&1",
                &rc);
    REQUIRE(rc == 0);
    REQUIRE(wait_until([&] { return graph.accepted() == 1; }, 20s));
    const auto got = graph.received();
    REQUIRE(got.size() == 1);
    CHECK(got[0].to == "16505551234");
    CHECK(got[0].text == "Order 1042 ships today.");
    CHECK(got[0].callback_data == id);
    CHECK(graph.unauthorized() == 0);

    // The accepted status links the wamid to the reply.
    std::string events;
    REQUIRE(wait_until(
        [&] {
            events = run_capture("kcat -C -b " + bootstrap + " -t omnibus.events -o beginning -e -q -f '%s\\n' 2>&1");
            return events.find("\"status\":\"accepted\"") != std::string::npos;
        },
        10s, 200ms));
    CHECK(events.find("\"callback_data\":\"" + id + "\"") != std::string::npos);
    CHECK(events.find("\"message_id\":\"wamid.fake1\"") != std::string::npos);

    // Through the pipeline: the message reached the AI outbox with its customer; the AI's reply,
    // written to omnibus.replies with nothing but the customer id (no channel, no recipient),
    // goes out on WhatsApp to the number the customer wrote from.
    std::string routed;
    REQUIRE(wait_until(
        [&] {
            routed = run_capture("kcat -C -b " + bootstrap + " -t omnibus.outbox.ai -o beginning -e -q -f '%s\\n' 2>&1");
            return routed.find("Where is my order 1042?") != std::string::npos;
        },
        20s, 200ms));
    static const std::regex customer_re(R"re("customer_id":"([^"]+)")re");
    std::smatch cm;
    REQUIRE(std::regex_search(routed, cm, customer_re));
    const std::string customer = cm[1];
    const std::string ai_id = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6e";
    produce_reply(bootstrap, customer, ai_id, "ai:assistant", "It left the warehouse this morning.", "/ai");
    REQUIRE(wait_until([&] { return graph.accepted() == 2; }, 30s));
    const auto both = graph.received();
    REQUIRE(both.size() == 2);
    CHECK(both[1].to == "16505551234");
    CHECK(both[1].text == "It left the warehouse this morning.");
    CHECK(both[1].callback_data == ai_id);

    // Classification and routing: "转人工" and an angry refund in Spanish go to the human
    // outbox, the refund with a high priority in the Spanish returns queue.
    auto text_webhook = [&](const std::string& wamid, const std::string& from, const std::string& text) {
        return R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{)"
               R"("messaging_product":"whatsapp","metadata":{"display_phone_number":"16505553333","phone_number_id":")" +
               std::string(kPhoneNumberId) + R"("},"contacts":[{"profile":{"name":"C"},"wa_id":")" + from +
               R"("}],"messages":[{"from":")" + from + R"(","id":")" + wamid + R"(","timestamp":")" +
               std::to_string(now) + R"(","type":"text","text":{"body":")" + text + R"("}}]}}]}]})";
    };
    for (const auto& [wamid, from, text] :
         {std::tuple<std::string, std::string, std::string>{"wamid.daemon.zh", "8613800138000", "转人工"},
          {"wamid.daemon.es", "34600111222", "Es una vergüenza, el producto llegó roto. Quiero mi reembolso YA!!!"}}) {
        const std::string body = text_webhook(wamid, from, text);
        auto posted = edge.Post("/webhooks/wa", {{"X-Hub-Signature-256", sign(body)}}, body, "application/json");
        REQUIRE(posted);
        CHECK(posted->status == 200);
    }
    std::string human;
    REQUIRE(wait_until(
        [&] {
            human = run_capture("kcat -C -b " + bootstrap + " -t omnibus.outbox.human -o beginning -e -q -f '%s\\n' 2>&1");
            return std::count(human.begin(), human.end(), '\n') >= 2;
        },
        20s, 200ms));
    INFO(human);
    CHECK(human.find(R"("language":"zh")") != std::string::npos);
    CHECK(human.find(R"("intent":{"name":"human_requested")") != std::string::npos);
    CHECK(human.find(R"("rule":"human_requested","priority":70,"queue":"zh-general")") != std::string::npos);
    CHECK(human.find(R"("language":"es")") != std::string::npos);
    CHECK(human.find(R"("rule":"angry_refund","priority":90,"queue":"es-returns")") != std::string::npos);
    CHECK(human.find(R"("sentiment":{"label":"negative")") != std::string::npos);

    // An agent answers the customer who asked for a person; their next message, an ordinary
    // order question the rules would give the AI, stays with the human.
    std::string zh_customer;
    {
        std::istringstream lines(human);
        for (std::string line; std::getline(lines, line);) {
            std::smatch zm;
            if (line.find("转人工") != std::string::npos && std::regex_search(line, zm, customer_re)) zh_customer = zm[1];
        }
    }
    REQUIRE_FALSE(zh_customer.empty());
    const std::string agent_id = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c70";
    produce_reply(bootstrap, zh_customer, agent_id, "agent:42", "您好，我是客服小李。", "/helpdesk");
    REQUIRE(wait_until([&] { return graph.accepted() == 3; }, 30s));
    CHECK(graph.received()[2].to == "8613800138000");
    {
        const std::string body = text_webhook("wamid.daemon.zh2", "8613800138000", "我的订单 #A12345 到哪了？");
        auto posted = edge.Post("/webhooks/wa", {{"X-Hub-Signature-256", sign(body)}}, body, "application/json");
        REQUIRE(posted);
        CHECK(posted->status == 200);
    }
    const bool held_by_human = wait_until(
        [&] {
            human = run_capture("kcat -C -b " + bootstrap + " -t omnibus.outbox.human -o beginning -e -q -f '%s\\n' 2>&1");
            return human.find("A12345") != std::string::npos;
        },
        20s, 200ms);
    if (!held_by_human)  // where it went instead
        UNSCOPED_INFO("outbox.ai: " + run_capture("kcat -C -b " + bootstrap +
                                                  " -t omnibus.outbox.ai -o beginning -e -q -f '%s\\n' 2>&1"));
    REQUIRE(held_by_human);
    {
        std::istringstream lines(human);
        std::string held;
        for (std::string line; std::getline(lines, line);)
            if (line.find("A12345") != std::string::npos) held = line;
        INFO(held);
        CHECK(held.find(R"("intent":{"name":"order_status")") != std::string::npos);
        CHECK(held.find(R"("rule":"handoff:human")") != std::string::npos);
        CHECK(held.find("您好，我是客服小李。") != std::string::npos);  // the agent's reply is in the context
    }

    // Emoji alone from a new customer: the channel's language.
    {
        const std::string body = text_webhook("wamid.daemon.emoji", "16505559876", "👍👍");
        auto posted = edge.Post("/webhooks/wa", {{"X-Hub-Signature-256", sign(body)}}, body, "application/json");
        REQUIRE(posted);
        CHECK(posted->status == 200);
    }
    std::string all;
    REQUIRE(wait_until(
        [&] {
            all = run_capture("kcat -C -b " + bootstrap + " -t omnibus.outbox.ai -o beginning -e -q -f '%s\\n' 2>&1") +
                  run_capture("kcat -C -b " + bootstrap + " -t omnibus.outbox.human -o beginning -e -q -f '%s\\n' 2>&1");
            return all.find("👍👍") != std::string::npos;
        },
        20s, 200ms));
    {
        std::istringstream lines(all);
        for (std::string line; std::getline(lines, line);)
            if (line.find("👍👍") != std::string::npos) {
                INFO(line);
                CHECK(line.find(R"("language":"en")") != std::string::npos);
            }
    }

    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(10s));
    CHECK(d.process().exit_code() == 0);
    CHECK(d.output().find(kToken) == std::string::npos);
}
