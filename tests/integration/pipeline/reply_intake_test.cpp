// ReplyIntake over the mock cluster: valid replies and hand-off commands reach the customer
// topic under the surviving customer's key, unchanged; every kind of bad record goes to the
// dead-letter topic with its code, and none blocks the ones behind it.
#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "envelope/cloudevent.h"
#include "envelope/envelope.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka_test_support.h"
#include "topic_reader.h"
#include "pipeline/history/history_commands.h"
#include "pipeline/history/reply_intake.h"
#include "support/metric_value.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using namespace omnibus::pipeline::history;

namespace {

constexpr const char* kReplies = "omnibus.replies";
constexpr const char* kCustomer = "omnibus.pipeline.customer";
constexpr const char* kDead = "omnibus.deadletter";

envelope::Envelope reply(std::string customer, std::string author, std::string text) {
    envelope::Envelope e;
    e.id = envelope::new_id();
    e.direction = envelope::Direction::outbound;
    e.sender.id = std::move(author);
    if (!customer.empty()) e.customer_id = std::move(customer);
    e.content.type = envelope::ContentType::text;
    if (!text.empty()) e.content.text = std::move(text);
    e.received_at = envelope::now_ms();
    return e;
}

}  // namespace

TEST_CASE("reply intake: replies and hand-offs go to the surviving customer's key, bad ones to the dead letters",
          "[pipeline][replies][integration]") {
    EmbeddedCluster cluster(1);
    cluster.create_topic(kReplies, 2);
    cluster.create_topic(kCustomer, 2);
    cluster.create_topic(kDead, 1);
    metrics::Registry reg;
    Producer producer(settings_for(cluster), reg);
    ReplyIntakeOptions o;
    o.group_id = "omnibus.replies";
    o.input_topic = kReplies;
    o.output_topic = kCustomer;
    o.deadletter_topic = kDead;
    const std::map<std::string, std::string> known{{"cust-1", "cust-1"}, {"cust-alias", "cust-1"}};
    o.survivor = [&](std::string_view c) -> std::optional<std::string> {
        auto it = known.find(std::string(c));
        if (it == known.end()) return std::nullopt;
        return it->second;
    };
    ReplyIntake intake(settings_for(cluster), std::move(o), producer, reg);
    TopicReader out(settings_for(cluster), reg, kCustomer);
    TopicReader dead(settings_for(cluster), reg, kDead);

    auto send = [&](Record r) {
        r.topic = kReplies;
        producer.produce(std::move(r), nullptr);
    };
    auto good = reply("cust-1", "ai:assistant", "On its way.");
    auto via_alias = reply("cust-alias", "agent:7", "Refund issued.");
    send(envelope::encode(good, "whatever-downstream-keys-by"));
    send(envelope::encode(via_alias, "cust-alias"));
    send(handoff_record(kReplies, HandoffCommand{true, "cust-alias", "agent-7", std::nullopt}, "/helpdesk"));
    // Bad ones.
    send(envelope::encode(reply("", "ai:assistant", "no customer"), "k"));
    send(envelope::encode(reply("cust-2", "ai:assistant", "erased or never seen"), "k"));
    send(envelope::encode(reply("cust-1", "bot:x", "who wrote this?"), "k"));
    send(envelope::encode(reply("cust-1", "ai:assistant", ""), "k"));
    auto inbound = reply("cust-1", "ai:assistant", "x");
    inbound.direction = envelope::Direction::inbound;
    inbound.channel = {"whatsapp", "wa"};
    inbound.platform = envelope::Platform{"pm-1", std::nullopt, std::nullopt};
    send(envelope::encode(inbound, "k"));
    send(Record{kReplies, "k", "{\"half\": ", {}});  // no CloudEvent headers at all
    send(handoff_record(kReplies, HandoffCommand{false, "cust-1", "", std::nullopt}, "/helpdesk"));
    envelope::CloudEvent other{envelope::new_id(), "/x", "com.example.other", envelope::now_ms(), std::nullopt,
                               std::nullopt};
    send(envelope::to_record(std::move(other), "k", "{}"));
    // Still flowing after all of that.
    auto last = reply("cust-1", "ai:assistant", "Anything else?");
    send(envelope::encode(last, "cust-1"));

    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 4 && dead.size() >= 8; }, 30s));
    std::this_thread::sleep_for(200ms);
    const auto passed = out.raw();
    REQUIRE(passed.size() == 4);
    std::map<std::string, std::string> key_of;  // ce_id → key
    for (const auto& r : passed) {
        auto a = envelope::read_attributes(r.record);
        REQUIRE(a.ok());
        key_of[a->id] = r.record.key;
    }
    CHECK(key_of[good.id] == "cust-1");
    CHECK(key_of[via_alias.id] == "cust-1");  // the survivor
    CHECK(key_of[last.id] == "cust-1");
    // Unchanged: the body is what downstream wrote (the stage decodes it there).
    for (const auto& r : passed)
        if (r.record.key == "cust-1" && envelope::read_attributes(r.record)->id == good.id)
            CHECK(r.record.value == envelope::encode(good, "").value);

    std::multiset<std::string> codes;
    const auto dead_records = dead.raw();
    for (const auto& r : dead_records)
        if (const auto* h = r.record.header("omnibus_error_code")) codes.insert(h->value);
    CHECK(codes == std::multiset<std::string>{"missing_customer", "unknown_customer", "bad_author", "empty_reply",
                                              "not_outbound", "missing_header", "bad_command", "unknown_type"});
    CHECK(omnibus::test::metric_value(reg, "omnibus_replies_dead_letters_total") == 8);
}
