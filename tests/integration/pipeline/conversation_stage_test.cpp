// ConversationStage over the mock cluster: one customer's messages from two channels form
// one conversation with the earlier ones as context; an idle gap opens a new conversation;
// a reprocessed message changes nothing; a stage with a lost disk restores the history from
// the changelog; merged customers are forwarded to the survivor; bad records are
// dead-lettered; retention purges with tombstones; after a merge the survivor's history takes
// the alias's; an erasure empties a history.
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <thread>

#include "envelope/envelope.h"
#include "kafka/consumer.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka_test_support.h"
#include "topic_reader.h"
#include "pipeline/history/conversation_stage.h"
#include "pipeline/history/history_commands.h"
#include "support/metric_value.h"
#include "support/scratch_dir.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using namespace omnibus::pipeline::history;
using omnibus::test::ScratchDir;

namespace {

constexpr const char* kInput = "omnibus.pipeline.customer";
constexpr const char* kChangelog = "omnibus.changelog.history";
constexpr const char* kOutbox = "omnibus.outbox.ai";
constexpr const char* kDead = "omnibus.deadletter";
constexpr const char* kDelivery = "omnibus.delivery";
constexpr const char* kHuman = "omnibus.outbox.human";

envelope::Envelope message(std::string channel, std::string sender, std::string text, std::int64_t at_ms) {
    envelope::Envelope e;
    e.id = envelope::new_id();
    e.channel = {channel == "mail" ? "email" : "whatsapp", channel};
    e.direction = envelope::Direction::inbound;
    e.sender.id = std::move(sender);
    e.content.type = envelope::ContentType::text;
    e.content.text = std::move(text);
    e.received_at = envelope::Timestamp(std::chrono::milliseconds(at_ms));
    e.platform = envelope::Platform{"pm-" + e.id, std::nullopt, std::nullopt};
    REQUIRE(envelope::validate(e).ok());
    return e;
}

struct Fixture {
    explicit Fixture(int brokers = 1) : cluster(brokers) {
        cluster.create_topic(kInput, 2);
        cluster.create_topic(kChangelog, 2);
        cluster.create_topic(kOutbox, 2);
        cluster.create_topic(kDead, 1);
        cluster.create_topic(kDelivery, 2);
        cluster.create_topic(kHuman, 2);
        settings = settings_for(cluster);
    }
    ConversationStageOptions options(const std::string& store_dir) {
        ConversationStageOptions o;
        o.group_id = "omnibus.conversation";
        o.input_topic = kInput;
        o.changelog_topic = kChangelog;
        o.outbox_topic = kOutbox;
        o.deadletter_topic = kDead;
        o.delivery_topic = kDelivery;
        o.human_outbox_topic = kHuman;
        o.store_dir = store_dir;
        o.partition_count = 2;
        o.history.conversation_idle = std::chrono::minutes(30);
        o.history.context_messages = 10;
        o.history.context_bytes = 4096;
        o.customer = [this](std::string_view c) -> std::optional<CustomerRef> {
            std::lock_guard lock(merged_mu);
            CustomerRef ref{std::string(c), {}, {}};
            if (auto it = merged.find(ref.id); it != merged.end()) ref.id = it->second;
            if (auto a = attributes.find(ref.id); a != attributes.end()) ref.attributes = a->second;
            for (const auto& [alias, into] : merged)
                if (into == ref.id) ref.aliases.push_back(alias);
            return ref;
        };
        return o;
    }
    void send(const envelope::Envelope& e, const std::string& customer) {
        Record r = envelope::encode(e, customer);
        r.topic = kInput;
        producer.produce(std::move(r), deliveries.callback());
        REQUIRE(producer.flush(10s) == 0);
    }

    EmbeddedCluster cluster;
    KafkaSettings settings;
    metrics::Registry reg;
    Producer producer{settings_for(cluster), reg};
    Deliveries deliveries;
    std::mutex merged_mu;
    std::map<std::string, std::string> merged;  // alias → survivor
    std::map<std::string, pipeline::route::CustomerAttributes> attributes;  // customer → profile attributes
    ScratchDir dir;
};

// A reply as downstream writes it (the intake passes it on as it is, keyed by customer).
envelope::Envelope reply(std::string customer, std::string author, std::string text, std::string channel = {}) {
    envelope::Envelope e;
    e.id = envelope::new_id();
    if (!channel.empty()) e.channel = {channel == "mail" ? "email" : "whatsapp", channel};
    e.direction = envelope::Direction::outbound;
    e.sender.id = std::move(author);
    e.customer_id = std::move(customer);
    e.content.type = envelope::ContentType::text;
    e.content.text = std::move(text);
    e.received_at = envelope::now_ms();
    return e;
}

std::vector<std::string> context_ids(const envelope::Envelope& e) {
    std::vector<std::string> out;
    for (const auto& c : e.context) out.push_back(c.id);
    return out;
}

}  // namespace

TEST_CASE("conversation stage: one customer's messages across channels share a conversation and carry the history",
          "[pipeline][history][integration]") {
    Fixture f;
    metrics::Registry stage_reg;
    ConversationStage stage(f.settings, f.options(f.dir.path() + "/a"), f.producer, stage_reg);
    TopicReader out(f.settings, f.reg, kOutbox);

    const std::int64_t t0 = 1767225600000;  // 2026-01-01
    auto m1 = message("wa", "whatsapp:15551234567", "Hi, where is my order 1234?", t0);
    auto m2 = message("mail", "email:ana@example.com", "Sending the invoice by mail", t0 + 60'000);
    auto other = message("wa", "whatsapp:4915112345678", "Hallo", t0 + 61'000);
    auto m3 = message("wa", "whatsapp:15551234567", "Any news?", t0 + 120'000);
    auto m4 = message("wa", "whatsapp:15551234567", "Hello again, new question", t0 + 120'000 + 31 * 60'000);
    for (const auto* m : {&m1, &m2, &m3, &m4}) f.send(*m, "cust-ana");
    f.send(other, "cust-bob");

    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 5; }, 30s));
    auto all = out.envelopes();
    REQUIRE(all.size() == 5);
    const auto* o1 = out.find(all, m1.id);
    const auto* o2 = out.find(all, m2.id);
    const auto* o3 = out.find(all, m3.id);
    const auto* o4 = out.find(all, m4.id);
    const auto* ob = out.find(all, other.id);
    REQUIRE((o1 && o2 && o3 && o4 && ob));
    CHECK(o1->customer_id == "cust-ana");
    CHECK(o1->context.empty());
    REQUIRE(o1->conversation_id);
    CHECK(o2->conversation_id == o1->conversation_id);
    CHECK(o3->conversation_id == o1->conversation_id);
    CHECK(context_ids(*o2) == std::vector<std::string>{m1.id});
    CHECK(context_ids(*o3) == std::vector<std::string>{m1.id, m2.id});  // the mail is part of it
    REQUIRE(o3->context.size() == 2);
    CHECK(o3->context[1].channel == "mail");
    CHECK(o3->context[1].text == "Sending the invoice by mail");
    CHECK(o3->context[1].author == "customer");
    // 31 minutes of silence: a new conversation, still with the whole story as context.
    REQUIRE(o4->conversation_id);
    CHECK(o4->conversation_id != o1->conversation_id);
    CHECK(context_ids(*o4) == std::vector<std::string>{m1.id, m2.id, m3.id});
    // Another customer's history is apart.
    CHECK(ob->customer_id == "cust-bob");
    CHECK(ob->context.empty());
    CHECK(ob->conversation_id != o1->conversation_id);
    REQUIRE(o1->route);
    CHECK(o1->route->target == envelope::RouteTarget::ai);
    // The built-in rules: which AI rule depends on the team's business hours at the time of the run.
    CHECK((o1->route->rule == "default" || o1->route->rule == "outside_business_hours"));
    // Everything the pipeline added survives the envelope's own validation.
    for (const auto& e : all) CHECK(envelope::validate(e).ok());

    // Admin reads.
    auto page = stage.messages("cust-ana", MessageQuery{});
    REQUIRE(page);
    REQUIRE(page->entries.size() == 4);
    CHECK(page->entries[0].id == m4.id);
    auto convs = stage.conversations("cust-ana");
    REQUIRE(convs);
    CHECK(convs->size() == 2);
    CHECK_FALSE(stage.messages("cust-nobody", MessageQuery{}));
    // The stage knows where a customer's history lives: where the producer put its records.
    auto sent = f.deliveries.all();
    REQUIRE(sent.size() == 5);
    for (std::size_t i = 0; i < 4; ++i) CHECK(sent[i].partition == stage.partition_of("cust-ana"));
    CHECK(sent[4].partition == stage.partition_of("cust-bob"));
    CHECK(stage.holds_partition(stage.partition_of("cust-ana")));
    CHECK_FALSE(stage.holds_partition(7));

    // The same message again (a reprocessed record): nothing new is emitted.
    f.send(m3, "cust-ana");
    REQUIRE(omnibus::test::wait_until(
        [&] { return omnibus::test::metric_value(stage_reg, "omnibus_conversation_duplicates_total") == 1; }, 20s));
    CHECK(out.size() == 5);
    CHECK(stage.messages("cust-ana", MessageQuery{})->entries.size() == 4);
    // Each customer's newest entries were read from the store once; every later read of the
    // stage (dedup, newest entry, context, state) came from memory.
    CHECK(omnibus::test::metric_value(stage_reg, "omnibus_history_cache_misses_total") == 2);
    CHECK(omnibus::test::metric_value(stage_reg, "omnibus_history_cache_hits_total") >= 15);
    CHECK(omnibus::test::metric_value(stage_reg, "omnibus_history_cache_bytes") > 0);
}

TEST_CASE("conversation stage: a stage that lost its disk restores the history from the changelog",
          "[pipeline][history][integration]") {
    Fixture f;
    const std::int64_t t0 = 1767225600000;
    std::vector<envelope::Envelope> sent;
    {
        metrics::Registry reg;
        ConversationStage stage(f.settings, f.options(f.dir.path() + "/first"), f.producer, reg);
        for (int i = 0; i < 30; ++i) {
            sent.push_back(message("wa", "whatsapp:1555000" + std::to_string(i % 3), "msg " + std::to_string(i),
                                   t0 + i * 1000));
            f.send(sent.back(), "cust-" + std::to_string(i % 3));
        }
        REQUIRE(omnibus::test::wait_until(
            [&] { return omnibus::test::metric_value(reg, "omnibus_conversation_messages_total") == 30; }, 30s));
    }  // stopped: checkpoints written, but its directory is not used again

    metrics::Registry reg;
    ConversationStage stage(f.settings, f.options(f.dir.path() + "/second"), f.producer, reg);
    TopicReader out(f.settings, f.reg, kOutbox);
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 30; }, 30s));
    // Old messages again: all known after the restore, nothing emitted again.
    for (int i = 0; i < 3; ++i) f.send(sent[static_cast<std::size_t>(i)], "cust-" + std::to_string(i));
    auto next = message("wa", "whatsapp:15550001", "after the restore", t0 + 60'000);
    f.send(next, "cust-1");
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 31; }, 30s));
    REQUIRE(omnibus::test::wait_until(
        [&] { return omnibus::test::metric_value(reg, "omnibus_conversation_duplicates_total") == 3; }, 20s));
    // 30 entries and each customer's state (written with their first message, unchanged since).
    CHECK(omnibus::test::metric_value(reg, "omnibus_history_restored_records_total") == 33);
    auto all = out.envelopes();
    CHECK(all.size() == 31);
    const auto* o = out.find(all, next.id);
    REQUIRE(o);
    // cust-1 had messages 1, 4, 7, ... 28: ten of them, all in the context (context_messages 10).
    REQUIRE(o->context.size() == 10);
    CHECK(o->context.front().text == "msg 1");
    CHECK(o->context.back().text == "msg 28");
}

TEST_CASE("conversation stage: a merged customer's message goes to the survivor, bad records are dead-lettered, "
          "retention purges with tombstones",
          "[pipeline][history][integration]") {
    Fixture f;
    metrics::Registry reg;
    auto opts = f.options(f.dir.path() + "/s");
    opts.history.retention = std::chrono::hours(24);
    ConversationStage stage(f.settings, opts, f.producer, reg);
    TopicReader out(f.settings, f.reg, kOutbox);
    TopicReader dead(f.settings, f.reg, kDead);

    const std::int64_t now = envelope::now_ms().time_since_epoch().count();
    auto old_msg = message("wa", "whatsapp:1555", "from last year", now - 48 * 3600'000LL);
    f.send(old_msg, "cust-survivor");
    {
        std::lock_guard lock(f.merged_mu);
        f.merged["cust-alias"] = "cust-survivor";
    }
    auto via_alias = message("mail", "email:a@example.com", "written to the alias", now);
    f.send(via_alias, "cust-alias");
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 2; }, 30s));
    auto all = out.envelopes();
    const auto* o = out.find(all, via_alias.id);
    REQUIRE(o);
    CHECK(o->customer_id == "cust-survivor");
    CHECK(context_ids(*o) == std::vector<std::string>{old_msg.id});
    CHECK(omnibus::test::metric_value(reg, "omnibus_conversation_forwarded_total") == 1);
    CHECK_FALSE(stage.messages("cust-alias", MessageQuery{}));

    // Not an envelope, and an envelope without a key.
    f.producer.produce(Record{kInput, "cust-x", "{\"not\": \"an envelope\"}", {}}, nullptr);
    Record nokey = envelope::encode(message("wa", "whatsapp:1", "x", now), "");
    nokey.topic = kInput;
    f.producer.produce(std::move(nokey), nullptr);
    REQUIRE(omnibus::test::wait_until([&] { return dead.size() >= 2; }, 30s));
    std::set<std::string> codes;
    for (const auto& r : dead.raw())
        if (const auto* h = r.record.header("omnibus_error_code")) codes.insert(h->value);
    CHECK(codes.count("missing_key") == 1);
    CHECK(codes.size() == 2);

    // Retention: the 48-hour-old message goes, with a tombstone on the changelog.
    const auto before = high_watermark_total(f.settings, kChangelog, 2);
    CHECK(stage.purge_now() == 1);
    REQUIRE(omnibus::test::wait_until([&] { return high_watermark_total(f.settings, kChangelog, 2) == before + 1; },
                                      20s));
    auto page = stage.messages("cust-survivor", MessageQuery{});
    REQUIRE(page);
    REQUIRE(page->entries.size() == 1);
    CHECK(page->entries[0].id == via_alias.id);
}

TEST_CASE("conversation stage: after a merge the survivor's history holds both, in time order, erasure empties it",
          "[pipeline][history][integration]") {
    Fixture f;
    metrics::Registry reg;
    ConversationStage stage(f.settings, f.options(f.dir.path() + "/s"), f.producer, reg);
    TopicReader out(f.settings, f.reg, kOutbox);

    const std::int64_t t0 = 1767225600000;
    // Two customers (on different partitions or not: the keys decide) with interleaved times.
    std::vector<std::string> expected;  // ids in time order
    std::vector<std::pair<envelope::Envelope, std::string>> msgs;
    for (int i = 0; i < 6; ++i) {
        const bool older = i % 2 == 0;
        auto m = message(older ? "wa" : "mail", older ? "whatsapp:1555" : "email:ana@example.com",
                         "m" + std::to_string(i), t0 + i * 1000);
        expected.push_back(m.id);
        msgs.emplace_back(m, older ? "cust-old" : "cust-young");
    }
    for (const auto& [m, c] : msgs) f.send(m, c);
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 6; }, 30s));

    // The identity log merged cust-young into cust-old; the next message of the survivor asks
    // for the alias's history.
    {
        std::lock_guard lock(f.merged_mu);
        f.merged["cust-young"] = "cust-old";
    }
    auto next = message("wa", "whatsapp:1555", "after the merge", t0 + 10'000);
    expected.push_back(next.id);
    f.send(next, "cust-old");
    REQUIRE(omnibus::test::wait_until(
        [&] { return omnibus::test::metric_value(reg, "omnibus_history_imported_total") == 3; }, 30s));
    CHECK(omnibus::test::metric_value(reg, "omnibus_history_moved_total") == 3);
    auto page = stage.messages("cust-old", MessageQuery{});
    REQUIRE(page);
    std::vector<std::string> got;
    for (auto it = page->entries.rbegin(); it != page->entries.rend(); ++it) got.push_back(it->id);
    CHECK(got == expected);
    CHECK_FALSE(stage.messages("cust-young", MessageQuery{}));
    auto convs = stage.conversations("cust-old");
    REQUIRE(convs);
    CHECK(convs->size() == 2);  // each customer's own conversation came along

    // A second message does not ask again; a duplicate move finds nothing to move.
    auto again = message("wa", "whatsapp:1555", "once more", t0 + 11'000);
    f.send(again, "cust-old");
    Record dup = move_record(kInput, MoveCommand{"cust-young", "cust-old"}, "/test");
    f.producer.produce(std::move(dup), nullptr);
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 8; }, 30s));
    REQUIRE(omnibus::test::wait_until(
        [&] { return stage.messages("cust-old", MessageQuery{})->entries.size() == 8; }, 10s));
    CHECK(omnibus::test::metric_value(reg, "omnibus_history_moved_total") == 3);

    // Erasure.
    REQUIRE(stage.erase_history({"cust-old"}, 10s));
    REQUIRE(omnibus::test::wait_until([&] { return !stage.messages("cust-old", MessageQuery{}); }, 30s));
    // 8 entries, the absorbed marker and the customer's state, each tombstoned on the changelog.
    CHECK(omnibus::test::wait_until(
        [&] { return omnibus::test::metric_value(reg, "omnibus_history_erased_total") == 10; }, 10s));
}

TEST_CASE("conversation stage: a reply goes out on the channel the customer last wrote on, unless its window is "
          "closed or the reply names another",
          "[pipeline][history][integration]") {
    Fixture f;
    metrics::Registry reg;
    ConversationStage stage(f.settings, f.options(f.dir.path() + "/r"), f.producer, reg);
    TopicReader out(f.settings, f.reg, kOutbox);
    TopicReader delivery(f.settings, f.reg, kDelivery);
    TopicReader dead(f.settings, f.reg, kDead);

    const std::int64_t now = envelope::now_ms().time_since_epoch().count();
    constexpr std::int64_t hour = 3600'000;
    // a: mail, then WhatsApp an hour ago. b: WhatsApp 25 h ago (window closed), mail 30 h ago.
    // c: only WhatsApp, 25 h ago.
    auto a1 = message("mail", "email:ana@example.com", "invoice attached", now - 3 * hour);
    auto a2 = message("wa", "whatsapp:15550001", "where is it?", now - hour);
    auto b1 = message("mail", "email:bo@example.com", "hello", now - 30 * hour);
    auto b2 = message("wa", "whatsapp:15550002", "still waiting", now - 25 * hour);
    auto c1 = message("wa", "whatsapp:15550003", "hi", now - 25 * hour);
    f.send(a1, "cust-a");
    f.send(a2, "cust-a");
    f.send(b1, "cust-b");
    f.send(b2, "cust-b");
    f.send(c1, "cust-c");
    REQUIRE(omnibus::test::wait_until([&] { return out.size() >= 5; }, 30s));
    const auto routed = out.envelopes();
    const auto* oa2 = out.find(routed, a2.id);
    REQUIRE(oa2);
    const std::optional<std::string> conv_a = oa2->conversation_id;

    auto ra = reply("cust-a", "ai:assistant", "It ships tomorrow.");
    auto rb = reply("cust-b", "agent:7", "Sorry for the wait!");
    auto rc = reply("cust-c", "ai:assistant", "Hello!");
    auto rd = reply("cust-a", "agent:7", "Invoice corrected.", "mail");
    auto unknown = reply("cust-nobody", "ai:assistant", "?");
    for (const auto* r : {&ra, &rb, &rc, &rd, &unknown}) f.send(*r, *r->customer_id);
    REQUIRE(omnibus::test::wait_until([&] { return delivery.size() >= 4 && dead.size() >= 1; }, 30s));

    auto all = delivery.envelopes();
    REQUIRE(all.size() == 4);
    const auto* da = delivery.find(all, ra.id);
    const auto* db = delivery.find(all, rb.id);
    const auto* dc = delivery.find(all, rc.id);
    const auto* dd = delivery.find(all, rd.id);
    REQUIRE((da && db && dc && dd));
    CHECK(da->channel.name == "wa");
    REQUIRE(da->recipient);
    CHECK(da->recipient->id == "whatsapp:15550001");
    CHECK(da->conversation_id == conv_a);
    CHECK(da->customer_id == "cust-a");
    CHECK(db->channel.name == "mail");  // the WhatsApp window closed; email has none
    CHECK(db->recipient->id == "email:bo@example.com");
    CHECK(dc->channel.name == "wa");  // nothing else: the connector applies its window policy
    REQUIRE(dc->route);
    CHECK(dc->route->flags == std::vector<std::string>{"outside_24h_window"});
    CHECK(dd->channel.name == "mail");  // named by the reply
    CHECK(dd->recipient->id == "email:ana@example.com");
    for (const auto& r : delivery.raw()) CHECK(r.record.key.rfind("cust-", 0) == 0);

    const auto dead_records = dead.raw();
    const auto* code = dead_records.front().record.header("omnibus_error_code");
    REQUIRE(code);
    CHECK(code->value == "unknown_customer");

    // The history holds the replies with their authors, and the next inbound message sees them.
    auto page = stage.messages("cust-a", MessageQuery{});
    REQUIRE(page);
    REQUIRE(page->entries.size() == 4);
    CHECK(page->entries[0].author == "agent:7");
    CHECK(page->entries[0].direction == envelope::Direction::outbound);
    CHECK(page->entries[1].author == "ai");
    // Agent 7 answered cust-a: the conversation is theirs now, so the next message goes to the
    // human outbox, with the replies in its context.
    TopicReader human(f.settings, f.reg, kHuman);
    auto a3 = message("wa", "whatsapp:15550001", "thanks!", envelope::now_ms().time_since_epoch().count());
    f.send(a3, "cust-a");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 1; }, 30s));
    const auto routed3 = human.envelopes();
    const auto* o3 = human.find(routed3, a3.id);
    REQUIRE(o3);
    CHECK(o3->route->rule == "handoff:human");
    CHECK(context_ids(*o3) == std::vector<std::string>{a1.id, a2.id, ra.id, rd.id});

    // A reply handed out again (a crash before its offset was committed) is not delivered twice.
    f.send(ra, "cust-a");
    auto probe = reply("cust-b", "ai:assistant", "one more");
    f.send(probe, "cust-b");
    REQUIRE(omnibus::test::wait_until([&] { return delivery.size() >= 5; }, 30s));
    std::this_thread::sleep_for(300ms);
    CHECK(delivery.size() == 5);
    CHECK(omnibus::test::metric_value(reg, "omnibus_conversation_replies_total") == 5);
}

TEST_CASE("conversation stage: routing by intent, a human who replied keeps the conversation until released, "
          "an AI that cannot help escalates",
          "[pipeline][history][integration]") {
    Fixture f;
    metrics::Registry reg;
    auto opts = f.options(f.dir.path() + "/h");
    // The classifier is tested on its own; here its result is what the text says.
    std::vector<std::string> previous;
    opts.classify = [&previous](envelope::Envelope& env, const std::string& prev) {
        previous.push_back(prev);
        env.language = "es";
        env.language_confidence = 0.9;
        const std::string& t = *env.content.text;
        env.intent = envelope::Intent{t.find("persona") != std::string::npos ? "human_requested" : "order_status",
                                      0.9, std::string("test")};
    };
    ConversationStage stage(f.settings, opts, f.producer, reg);
    TopicReader ai(f.settings, f.reg, kOutbox);
    TopicReader human(f.settings, f.reg, kHuman);
    TopicReader delivery(f.settings, f.reg, kDelivery);
    auto now = [] { return envelope::now_ms().time_since_epoch().count(); };

    auto m1 = message("wa", "whatsapp:34600000001", "quiero hablar con una persona", now());
    f.send(m1, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 1; }, 30s));
    auto h1 = human.envelopes();
    REQUIRE(h1.size() == 1);
    REQUIRE(h1[0].route);
    CHECK(h1[0].route->target == envelope::RouteTarget::human);
    CHECK(h1[0].route->rule == "human_requested");
    CHECK(h1[0].route->queue == "es-general");
    CHECK(h1[0].language == "es");

    // An agent answers; the customer's next message, about anything, stays with the human.
    auto r1 = reply("cust-es", "agent:7", "Hola, soy Ana.");
    f.send(r1, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return delivery.size() >= 1; }, 30s));
    auto m2 = message("wa", "whatsapp:34600000001", "¿dónde está mi pedido?", now());
    f.send(m2, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 2; }, 30s));
    auto h2 = human.envelopes();
    const auto* o2 = human.find(h2, m2.id);
    REQUIRE(o2);
    CHECK(o2->route->rule == "handoff:human");
    CHECK(ai.size() == 0);

    // The agent releases it: back to the AI.
    f.producer.produce(handoff_record(kInput, HandoffCommand{false, "cust-es", "7", std::nullopt}, "/helpdesk"),
                       nullptr);
    auto m3 = message("wa", "whatsapp:34600000001", "¿y el envío?", now() + 1);
    f.send(m3, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return ai.size() >= 1; }, 30s));
    auto a3 = ai.envelopes();
    REQUIRE(a3.size() == 1);
    CHECK(a3[0].id == m3.id);
    CHECK(a3[0].route->target == envelope::RouteTarget::ai);

    // The AI says it cannot help: the reply is delivered and the human outbox gets it with the
    // conversation; the next message goes to the human.
    auto r2 = reply("cust-es", "ai:assistant", "Le paso con un compañero.");
    r2.route = envelope::Route{envelope::RouteTarget::ai, std::nullopt, 0, std::nullopt, {"cannot_help"}};
    f.send(r2, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return delivery.size() >= 2 && human.size() >= 3; }, 30s));
    auto h3 = human.envelopes();
    const auto* esc = human.find(h3, r2.id);
    REQUIRE(esc);
    CHECK(esc->route->rule == "handoff:cannot_help");
    CHECK(esc->context.size() >= 4);
    auto m4 = message("wa", "whatsapp:34600000001", "hola?", now() + 2);
    f.send(m4, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 4; }, 30s));
    auto h4 = human.envelopes();
    const auto* o4 = human.find(h4, m4.id);
    REQUIRE(o4);
    CHECK(o4->route->rule == "handoff:human");
    CHECK(ai.size() == 1);

    // The classifier was told the customer's previous language from the second message on.
    REQUIRE(previous.size() == 4);
    CHECK(previous[0].empty());
    CHECK(previous[1] == "es");
    CHECK(omnibus::test::metric_value(reg, "omnibus_conversation_handoffs_total") == 2);

    // A stage restored from the changelog knows who holds the conversation.
    stage.stop();
    metrics::Registry reg2;
    ConversationStage again(f.settings, f.options(f.dir.path() + "/h2"), f.producer, reg2);
    auto m5 = message("wa", "whatsapp:34600000001", "sigo aquí", now() + 3);
    f.send(m5, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 5; }, 30s));
    auto h5 = human.envelopes();
    const auto* o5 = human.find(h5, m5.id);
    REQUIRE(o5);
    CHECK(o5->route->rule == "handoff:human");

    // The customer comes back after the conversation closed (30 minutes idle here): a new
    // conversation, and the rules decide again.
    auto m6 = message("wa", "whatsapp:34600000001", "otra pregunta", now() + 31 * 60 * 1000);
    f.send(m6, "cust-es");
    REQUIRE(omnibus::test::wait_until([&] { return ai.size() >= 2; }, 30s));
    auto a6 = ai.envelopes();
    const auto* o6 = ai.find(a6, m6.id);
    REQUIRE(o6);
    CHECK(o6->conversation_id != o5->conversation_id);
    CHECK(o6->route->rule != "handoff:human");
}

TEST_CASE("conversation stage: the router sees the customer's attributes, their time zone and the AI's turns "
          "without resolution",
          "[pipeline][history][integration]") {
    // Tokyo keeps UTC+9 all year: a window around Tokyo's hour now never holds the UTC hour,
    // so the first rule matches only when the customer's zone reaches the router.
    const auto utc_hour = std::chrono::duration_cast<std::chrono::hours>(
                              std::chrono::system_clock::now().time_since_epoch()).count() % 24;
    const long tokyo = (utc_hour + 9) % 24;
    auto hh = [](long h) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "%02ld:00", (h + 24) % 24);
        return std::string(buf);
    };
    const std::string rules = "version: 1\n"
                              "rules:\n"
                              "  - name: tokyo_daytime\n"
                              "    match: {time_of_day: {between: '" + hh(tokyo - 1) + "-" + hh(tokyo + 2) +
                              "', zone: customer}}\n"
                              "    route: human\n"
                              "    queue: tokyo\n"
                              "  - name: vip\n"
                              "    match: {customer: {tier: vip}}\n"
                              "    route: human\n"
                              "    priority: 80\n"
                              "    queue: vip\n"
                              "  - name: stuck\n"
                              "    match: {ai_turns_at_least: 2}\n"
                              "    route: human\n"
                              "    queue: stuck\n"
                              "  - name: default\n"
                              "    route: ai\n";
    auto loaded = pipeline::route::Router::load_string(rules, "test-rules.yaml");
    REQUIRE(loaded.ok());

    Fixture f;
    f.attributes["cust-tokyo"] = {{"time_zone", "Asia/Tokyo"}};
    f.attributes["cust-vip"] = {{"tier", "vip"}, {"time_zone", "UTC"}};
    metrics::Registry reg;
    auto opts = f.options(f.dir.path() + "/h");
    opts.router = loaded.router;
    ConversationStage stage(f.settings, opts, f.producer, reg);
    TopicReader ai(f.settings, f.reg, kOutbox);
    TopicReader human(f.settings, f.reg, kHuman);
    TopicReader delivery(f.settings, f.reg, kDelivery);
    auto now = [] { return envelope::now_ms().time_since_epoch().count(); };

    auto t1 = message("wa", "whatsapp:81900000001", "hello", now());
    f.send(t1, "cust-tokyo");
    auto v1 = message("wa", "whatsapp:34600000002", "hello", now());
    f.send(v1, "cust-vip");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 2; }, 30s));
    auto hs = human.envelopes();
    const auto* ht = human.find(hs, t1.id);
    const auto* hv = human.find(hs, v1.id);
    REQUIRE(ht);
    REQUIRE(hv);
    CHECK(ht->route->rule == "tokyo_daytime");
    CHECK(hv->route->rule == "vip");
    CHECK(hv->route->priority == 80);

    // A customer without attributes: the AI answers twice without resolving, the third
    // message goes to a person; a reply flagged `resolved` starts the count again.
    auto p1 = message("wa", "whatsapp:34600000003", "hello", now());
    f.send(p1, "cust-plain");
    REQUIRE(omnibus::test::wait_until([&] { return ai.size() >= 1; }, 30s));
    f.send(reply("cust-plain", "ai:assistant", "Hi! How can I help?"), "cust-plain");
    auto p2 = message("wa", "whatsapp:34600000003", "my parcel", now() + 1);
    f.send(p2, "cust-plain");
    REQUIRE(omnibus::test::wait_until([&] { return ai.size() >= 2; }, 30s));
    f.send(reply("cust-plain", "ai:assistant", "Which order is it?"), "cust-plain");
    auto p3 = message("wa", "whatsapp:34600000003", "the blue one", now() + 2);
    f.send(p3, "cust-plain");
    REQUIRE(omnibus::test::wait_until([&] { return human.size() >= 3; }, 30s));
    auto hs3 = human.envelopes();
    const auto* h3 = human.find(hs3, p3.id);
    REQUIRE(h3);
    CHECK(h3->route->rule == "stuck");
    CHECK(ai.size() == 2);

    auto done = reply("cust-plain", "ai:assistant", "It arrives tomorrow.");
    done.route = envelope::Route{envelope::RouteTarget::ai, std::nullopt, 0, std::nullopt, {"resolved"}};
    f.send(done, "cust-plain");
    REQUIRE(omnibus::test::wait_until([&] { return delivery.size() >= 3; }, 30s));
    auto p4 = message("wa", "whatsapp:34600000003", "thanks", now() + 3);
    f.send(p4, "cust-plain");
    REQUIRE(omnibus::test::wait_until([&] { return ai.size() >= 3; }, 30s));
    auto as4 = ai.envelopes();
    const auto* a4 = ai.find(as4, p4.id);
    REQUIRE(a4);
    CHECK(a4->route->rule == "default");
}

TEST_CASE("conversation stage: an emit or a changelog write Kafka does not take is undone and done again, "
          "the history holds each message once, the outbox never a second id",
          "[pipeline][history][integration]") {
    // Three brokers: the outbox's partitions lead on broker 2, the changelog's on broker 3,
    // everything else (input, groups) on broker 1, so each write can fail on its own.
    Fixture f(3);
    f.cluster.command([](rd_kafka_mock_cluster_t* m) {
        for (int p = 0; p < 2; ++p) {
            for (const char* t : {kInput, kDelivery, kHuman}) rd_kafka_mock_partition_set_leader(m, t, p, 1);
            rd_kafka_mock_partition_set_leader(m, kOutbox, p, 2);
            rd_kafka_mock_partition_set_leader(m, kChangelog, p, 3);
        }
        rd_kafka_mock_partition_set_leader(m, kDead, 0, 1);
        for (const char* g : {"omnibus.conversation", "test-reader-omnibus.outbox.ai",
                              "test-reader-omnibus.changelog.history"})
            rd_kafka_mock_coordinator_set(m, "group", g, 1);
    });
    KafkaSettings stage_settings = f.settings;
    stage_settings.message_timeout = 1500ms;  // a write to a broker that is down fails after this
    metrics::Registry stage_reg;
    Producer stage_out(stage_settings, stage_reg);
    ConversationStage stage(f.settings, f.options(f.dir.path() + "/a"), stage_out, stage_reg);
    TopicReader out(f.settings, f.reg, kOutbox);
    TopicReader log(f.settings, f.reg, kChangelog);
    auto metric = [&](const char* name) { return omnibus::test::metric_value(stage_reg, name); };
    auto copies = [&](const std::string& id) {
        std::size_t n = 0;
        for (const auto& e : out.envelopes()) n += e.id == id;
        return n;
    };
    auto logged = [&](const std::string& id) {  // changelog records of the entry of message `id`
        std::size_t n = 0;
        for (const auto& r : log.raw()) n += r.record.key.find(id) != std::string::npos;
        return n;
    };

    const std::int64_t t0 = 1767225600000;
    auto m1 = message("wa", "whatsapp:15551234567", "Hi, where is my order 1234?", t0);
    f.send(m1, "cust-ana");
    REQUIRE(omnibus::test::wait_until([&] { return copies(m1.id) == 1 && logged(m1.id) == 1; }, 30s));

    // The outbox's broker is down: every emit of m2 fails, its entry is taken back and the
    // record handed out again, until the broker is back.
    f.cluster.command([](rd_kafka_mock_cluster_t* m) { rd_kafka_mock_broker_set_down(m, 2); });
    auto m2 = message("wa", "whatsapp:15551234567", "Any news?", t0 + 60'000);
    f.send(m2, "cust-ana");
    REQUIRE(omnibus::test::wait_until(
        [&] { return metric("omnibus_conversation_output_failures_total") >= 2; }, 30s));
    CHECK(logged(m2.id) == 0);
    f.cluster.command([](rd_kafka_mock_cluster_t* m) { rd_kafka_mock_broker_set_up(m, 2); });
    REQUIRE(omnibus::test::wait_until([&] { return logged(m2.id) == 1 && copies(m2.id) >= 1; }, 30s));
    const double failures_emit = metric("omnibus_conversation_output_failures_total");

    // The changelog's broker is down: m3 is emitted, its changelog write fails, the entry is
    // taken back and the record done again: emitted again with the same id.
    f.cluster.command([](rd_kafka_mock_cluster_t* m) { rd_kafka_mock_broker_set_down(m, 3); });
    auto m3 = message("mail", "email:ana@example.com", "Sending the invoice by mail", t0 + 120'000);
    f.send(m3, "cust-ana");
    REQUIRE(omnibus::test::wait_until([&] { return copies(m3.id) >= 2; }, 30s));
    CHECK(metric("omnibus_conversation_output_failures_total") > failures_emit);
    f.cluster.command([](rd_kafka_mock_cluster_t* m) { rd_kafka_mock_broker_set_up(m, 3); });
    REQUIRE(omnibus::test::wait_until(
        [&] { return metric("omnibus_conversation_messages_total") == 3 && logged(m3.id) == 1; }, 30s));

    // The history holds each message once, in order; the changelog each entry once.
    auto page = stage.messages("cust-ana", MessageQuery{});
    REQUIRE(page);
    std::vector<std::string> ids;
    for (const auto& e : page->entries) ids.push_back(e.id);
    CHECK(ids == std::vector<std::string>{m3.id, m2.id, m1.id});
    CHECK(logged(m1.id) == 1);
    CHECK(logged(m2.id) == 1);
    // The outbox: m1 once; m2 once (a failed emit leaves nothing); m3 at least twice, every
    // copy the same message with the same context.
    CHECK(copies(m1.id) == 1);
    CHECK(copies(m2.id) == 1);
    for (const auto& e : out.envelopes()) {
        if (e.id != m3.id) continue;
        CHECK(context_ids(e) == std::vector<std::string>{m1.id, m2.id});
        CHECK(e.customer_id == "cust-ana");
    }
}

TEST_CASE("conversation stage with Kafka transactions: messages are routed in transactions, an aborted one rebuilds "
          "the stores from the changelog and the history still holds each message once",
          "[pipeline][history][integration][transactions]") {
    Fixture f;
    metrics::Registry stage_reg;
    Producer plain(f.settings, stage_reg);
    Producer txn(f.settings, stage_reg, {{"producer", "transactional"}}, "omnibus.conversation.test-host:1");
    REQUIRE(txn.init_transactions(10s).empty());
    ConversationStageOptions o = f.options(f.dir.path() + "/a");
    o.transactional_producer = &txn;
    o.transaction_interval = 50ms;
    ConversationStage stage(f.settings, std::move(o), plain, stage_reg);
    TopicReader out(f.settings, f.reg, kOutbox);
    auto metric = [&](const char* series) { return omnibus::test::metric_value(stage_reg, series); };
    const char* committed = "omnibus_kafka_transactions_total{outcome=\"committed\"}";
    const char* aborted = "omnibus_kafka_transactions_total{outcome=\"aborted\"}";
    auto copies = [&](const std::string& id) {
        std::size_t n = 0;
        for (const auto& e : out.envelopes()) n += e.id == id;
        return n;
    };
    auto history_ids = [&](const std::string& customer) {
        std::vector<std::string> ids;
        if (auto page = stage.messages(customer, MessageQuery{})) {
            for (const auto& e : page->entries) ids.push_back(e.id);
        }
        return ids;
    };

    // Two customers (on the two partitions, whichever way the keys hash), five messages.
    const std::int64_t t0 = 1767225600000;
    std::vector<envelope::Envelope> ana, bo;
    for (int i = 0; i < 5; ++i) {
        auto& list = i % 2 ? bo : ana;
        list.push_back(message("wa", i % 2 ? "whatsapp:15557654321" : "whatsapp:15551234567",
                               "message " + std::to_string(i), t0 + i * 1000));
        f.send(list.back(), i % 2 ? "cust-bo" : "cust-ana");
    }
    REQUIRE(omnibus::test::wait_until([&] { return metric("omnibus_conversation_messages_total") == 5; }, 30s));
    // Committed (the interval, 50 ms after the last record) and settled.
    REQUIRE(omnibus::test::wait_until(
        [&] { return metric(committed) >= 1; }, 10s));
    for (double before = -1; before != metric(committed);) {
        before = metric(committed);
        std::this_thread::sleep_for(1s);
    }
    const double restored_before = metric("omnibus_history_restored_records_total");

    // The next transaction is refused (an abortable error): the stage rebuilds both stores
    // from the changelog and the records come again from the last commit.
    f.cluster.command([](rd_kafka_mock_cluster_t* m) {
        rd_kafka_mock_push_request_errors(m, 24 /* AddPartitionsToTxn */, 1,
                                          RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    });
    for (int i = 5; i < 10; ++i) {
        auto& list = i % 2 ? bo : ana;
        list.push_back(message("wa", i % 2 ? "whatsapp:15557654321" : "whatsapp:15551234567",
                               "message " + std::to_string(i), t0 + i * 1000));
        f.send(list.back(), i % 2 ? "cust-bo" : "cust-ana");
    }
    REQUIRE(omnibus::test::wait_until(
        [&] {
            return history_ids("cust-ana").size() == ana.size() && history_ids("cust-bo").size() == bo.size() &&
                   metric(aborted) >= 1;
        },
        30s));
    for (const auto& list : {ana, bo})
        for (const auto& e : list) REQUIRE(omnibus::test::wait_until([&] { return copies(e.id) >= 1; }, 10s));

    CHECK_FALSE(stage.failed());
    // Both stores were rebuilt from the changelog: the five earlier entries (and the
    // customers' states) came back from it.
    CHECK(metric("omnibus_history_restored_records_total") - restored_before >= 5);
    // Each history holds each of its messages once, newest first.
    std::vector<std::string> want_ana, want_bo;
    for (auto it = ana.rbegin(); it != ana.rend(); ++it) want_ana.push_back(it->id);
    for (auto it = bo.rbegin(); it != bo.rend(); ++it) want_bo.push_back(it->id);
    CHECK(history_ids("cust-ana") == want_ana);
    CHECK(history_ids("cust-bo") == want_bo);
    // The refused transaction's outputs never reached the log; what the rebuilt stores routed
    // carries the whole history as context, every copy of a message the same.
    for (const auto& e : out.envelopes()) {
        const auto& list = e.customer_id == "cust-ana" ? ana : bo;
        std::vector<std::string> before;
        for (const auto& m : list) {
            if (m.id == e.id) break;
            before.push_back(m.id);
        }
        INFO("message " << e.id);
        CHECK(context_ids(e) == before);
    }
    CHECK(copies(ana.back().id) == 1);
    CHECK(copies(bo.back().id) == 1);
}
