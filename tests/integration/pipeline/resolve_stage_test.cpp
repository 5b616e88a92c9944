// ResolveStage over the mock cluster with a real IdentityService: a new sender's burst keeps
// its order and gets one customer; two instances' stages racing senders that share a phone
// end with one customer; known senders resolve without a request; bad records are
// dead-lettered with their reason.
#include <catch2/catch.hpp>

#include <set>

#include "envelope/envelope.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka_test_support.h"
#include "pipeline/identity/identity_service.h"
#include "pipeline/identity/resolve_stage.h"
#include "support/metric_value.h"
#include "support/scratch_dir.h"
#include "topic_reader.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using namespace omnibus::pipeline::identity;
using omnibus::test::ScratchDir;

namespace {

constexpr const char* kInbound = "omnibus.inbound";
constexpr const char* kOut = "omnibus.pipeline.customer";
constexpr const char* kIdentity = "omnibus.identity";
constexpr const char* kEvents = "omnibus.events";
constexpr const char* kDead = "omnibus.deadletter";

envelope::Envelope message(std::string sender, std::string text) {
    envelope::Envelope e;
    e.id = envelope::new_id();
    e.channel = {"whatsapp", "wa"};
    e.sender.id = std::move(sender);
    e.content.text = std::move(text);
    e.received_at = envelope::now_ms();
    e.platform = envelope::Platform{"pm-" + e.id, std::nullopt, std::nullopt};
    return e;
}

// One omnibus instance's identity part: its producer, identity service and resolve stage.
struct Instance {
    Instance(const KafkaSettings& s, const std::string& dir, const std::string& origin)
        : producer(s, reg),
          identity(s, reg, producer,
                   IdentityServiceOptions{dir + "/identity-" + origin, kIdentity, kEvents, origin,
                                          std::chrono::hours(24), {}}),
          stage(s, ResolveStageOptions{"omnibus.identity-stage", kInbound, kOut, kDead, {}, 1000}, identity, producer,
                reg) {}
    metrics::Registry reg;
    Producer producer;
    IdentityService identity;
    ResolveStage stage;
};

struct Fixture {
    Fixture() : cluster(1) {
        cluster.create_topic(kInbound, 4);
        cluster.create_topic(kOut, 4);
        cluster.create_topic(kIdentity, 1);
        cluster.create_topic(kEvents, 1);
        cluster.create_topic(kDead, 1);
        settings = settings_for(cluster);
    }
    void send(const envelope::Envelope& e) {
        Record r = envelope::encode(e, e.sender.id);
        r.topic = kInbound;
        producer.produce(std::move(r), nullptr);
    }
    EmbeddedCluster cluster;
    KafkaSettings settings;
    metrics::Registry reg;
    Producer producer{settings_for(cluster), reg};
    ScratchDir dir;
};

}  // namespace

TEST_CASE("resolve stage: a new sender's burst keeps its order and gets one customer, known senders need no request",
          "[pipeline][identity][integration]") {
    Fixture f;
    Instance inst(f.settings, f.dir.path(), "a");
    TopicReader out(f.settings, f.reg, kOut);

    std::vector<std::string> sent;
    for (int i = 0; i < 50; ++i) {
        auto e = message("whatsapp:4917600000001", "burst " + std::to_string(i));
        e.sender.identities = {"phone:+4917600000001"};
        sent.push_back(e.id);
        f.send(e);
    }
    REQUIRE(f.producer.flush(10s) == 0);
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 50; }, 30s));
    auto all = out.envelopes();
    REQUIRE(all.size() == 50);
    std::vector<std::string> order;
    std::set<std::string> customers;
    for (const auto& e : all) {
        order.push_back(e.id);
        REQUIRE(e.customer_id);
        customers.insert(*e.customer_id);
    }
    CHECK(order == sent);  // one key, one partition: the topic's order is the stage's order
    for (std::size_t i = 0; i < all.size(); ++i) {
        // The message as sent, with the customer id added (the stage splices it into the body).
        CHECK(all[i].content.text == "burst " + std::to_string(i));
        CHECK(all[i].sender.identities == std::vector<std::string>{"phone:+4917600000001"});
    }
    REQUIRE(customers.size() == 1);
    const std::string customer = *customers.begin();
    for (const auto& r : out.raw()) CHECK(r.record.key == customer);
    CHECK(inst.identity.resolve_identity("phone:+4917600000001") == customer);

    // Known now: the next message resolves from the store, without a request on the log.
    const double via_log = omnibus::test::metric_value(inst.reg, "omnibus_resolve_messages_total{via=\"log\"}");
    auto again = message("whatsapp:4917600000001", "known");
    again.sender.identities = {"phone:+4917600000001"};
    f.send(again);
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 51; }, 20s));
    CHECK(omnibus::test::metric_value(inst.reg, "omnibus_resolve_messages_total{via=\"log\"}") == via_log);
    CHECK(omnibus::test::metric_value(inst.reg, "omnibus_resolve_messages_total{via=\"store\"}") >= 1);
}

TEST_CASE("resolve stage: two instances racing senders that share a phone end with one customer",
          "[pipeline][identity][integration]") {
    Fixture f;
    Instance a(f.settings, f.dir.path(), "a");
    Instance b(f.settings, f.dir.path(), "b");
    TopicReader out(f.settings, f.reg, kOut);
    REQUIRE(omnibus::test::wait_until([&] { return a.stage.has_assignment() && b.stage.has_assignment(); }, 20s));

    // Twenty people, each writing at once on WhatsApp and in the web chat with a verified
    // claim of the same number: the two messages land on different partitions, often on
    // different instances.
    for (int i = 0; i < 20; ++i) {
        const std::string number = "4917611111" + std::to_string(100 + i);
        auto wa = message("whatsapp:" + number, "hi");
        wa.sender.identities = {"phone:+" + number};
        auto chat = message("webchat:visitor-" + std::to_string(i), "hello");
        chat.channel = {"webchat", "site"};
        chat.sender.verified_claims = envelope::VerifiedClaims{std::nullopt, std::nullopt, "+" + number};
        f.send(wa);
        f.send(chat);
    }
    REQUIRE(f.producer.flush(10s) == 0);
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 40; }, 30s));
    std::map<std::string, std::set<std::string>> by_number;  // number → customer ids
    for (const auto& e : out.envelopes()) {
        REQUIRE(e.customer_id);
        std::string number = e.sender.id.rfind("whatsapp:", 0) == 0 ? e.sender.id.substr(9)
                                                                    : e.sender.verified_claims->phone->substr(1);
        by_number[number].insert(*e.customer_id);
    }
    REQUIRE(by_number.size() == 20);
    for (const auto& [number, customers] : by_number) {
        INFO(number);
        CHECK(customers.size() == 1);
    }
    // Both instances answer the same.
    REQUIRE(b.identity.wait_caught_up(10s));
    REQUIRE(a.identity.wait_caught_up(10s));
    for (const auto& [number, customers] : by_number) {
        CHECK(a.identity.resolve_identity("phone:+" + number) == *customers.begin());
        CHECK(b.identity.resolve_identity("phone:+" + number) == *customers.begin());
    }
}

TEST_CASE("resolve stage: records it cannot process are dead-lettered with the reason", "[pipeline][identity][integration]") {
    Fixture f;
    Instance inst(f.settings, f.dir.path(), "a");
    TopicReader dead(f.settings, f.reg, kDead);
    TopicReader out(f.settings, f.reg, kOut);

    f.producer.produce(Record{kInbound, "whatsapp:1", "not json at all", {}}, nullptr);
    auto outbound = message("whatsapp:4917622222222", "a reply");
    outbound.direction = envelope::Direction::outbound;
    outbound.platform.reset();
    Record o = envelope::encode(outbound, outbound.sender.id);
    o.topic = kInbound;
    f.producer.produce(std::move(o), nullptr);
    auto fine = message("whatsapp:4917633333333", "fine");
    f.send(fine);
    REQUIRE(f.producer.flush(10s) == 0);

    REQUIRE(omnibus::test::wait_until([&] { return dead.size() >= 2 && out.size() >= 1; }, 30s));
    std::set<std::string> codes;
    for (const auto& r : dead.raw()) {
        const auto* code = r.record.header("omnibus_error_code");
        REQUIRE(code);
        codes.insert(code->value);
        CHECK(r.record.header("omnibus_source_topic")->value == kInbound);
    }
    CHECK(codes == std::set<std::string>{"missing_header", "not_inbound"});
    CHECK(out.envelopes().at(0).id == fine.id);
    CHECK(omnibus::test::metric_value(inst.reg, "omnibus_resolve_dead_letters_total") == 2);
}
