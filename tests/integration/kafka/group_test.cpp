// Consumer groups on the mock cluster: partitions split between members with hooks, records
// whose handler did not finish come back (at-least-once), and retry keeps partition order.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "kafka_test_support.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

namespace {

class Hooks {
public:
    void assigned(const std::vector<TopicPartition>& p) { add(assigned_, p); }
    void revoked(const std::vector<TopicPartition>& p) { add(revoked_, p); }
    std::set<TopicPartition> assigned() const { return get(assigned_); }
    std::set<TopicPartition> revoked() const { return get(revoked_); }

private:
    void add(std::set<TopicPartition>& to, const std::vector<TopicPartition>& p) {
        std::lock_guard lock(mu_);
        to.insert(p.begin(), p.end());
    }
    std::set<TopicPartition> get(const std::set<TopicPartition>& from) const {
        std::lock_guard lock(mu_);
        return from;
    }
    mutable std::mutex mu_;
    std::set<TopicPartition> assigned_, revoked_;
};

}  // namespace

TEST_CASE("two members of a group split the partitions and hooks follow the moves", "[kafka][integration][group]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.split", 6);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;

    Hooks ha, hb;
    Collected ca, cb;
    std::atomic<int> foreign{0};  // records handed out for partitions the member did not own
    auto options = [&](Hooks& h, Collected& c, Consumer** self) {
        ConsumerOptions o;
        o.group_id = "g.split";
        o.topics = {"t.split"};
        o.on_assigned = [&h](const std::vector<TopicPartition>& p) { h.assigned(p); };
        o.on_revoked = [&h](const std::vector<TopicPartition>& p) { h.revoked(p); };
        o.handler = [&c, self, &foreign](const ConsumedRecord& r) {
            std::vector<TopicPartition> mine = (*self)->assignment();
            if (!std::binary_search(mine.begin(), mine.end(), TopicPartition{r.record.topic, r.partition})) ++foreign;
            c.add(r);
            return Disposition::done;
        };
        return o;
    };
    Consumer* pa = nullptr;
    Consumer* pb = nullptr;
    Consumer a(s, options(ha, ca, &pa), reg);
    pa = &a;
    REQUIRE(wait_until([&] { return a.assignment().size() == 6; }, 15s));
    CHECK(ha.assigned().size() == 6);

    auto b = std::make_unique<Consumer>(s, options(hb, cb, &pb), reg);
    pb = b.get();
    REQUIRE(wait_until(
        [&] {
            auto x = a.assignment();
            auto y = b->assignment();
            return !x.empty() && !y.empty() && x.size() + y.size() == 6;
        },
        20s));
    std::vector<TopicPartition> pa_now = a.assignment(), pb_now = b->assignment();
    std::set<TopicPartition> all(pa_now.begin(), pa_now.end());
    all.insert(pb_now.begin(), pb_now.end());
    CHECK(all.size() == 6);  // disjoint and complete
    // Cooperative: A gave up exactly what B took, and kept the rest.
    CHECK(ha.revoked() == std::set<TopicPartition>(pb_now.begin(), pb_now.end()));
    CHECK(hb.assigned() == std::set<TopicPartition>(pb_now.begin(), pb_now.end()));

    produce_n(s, reg, "t.split", 120);
    REQUIRE(wait_until([&] { return ca.size() + cb.size() == 120; }, 20s));
    CHECK(ca.size() > 0);
    CHECK(cb.size() > 0);
    CHECK(foreign.load() == 0);

    // B leaves: its partitions are revoked there and come back to A.
    REQUIRE(b->stop());
    CHECK(hb.revoked() == std::set<TopicPartition>(pb_now.begin(), pb_now.end()));
    CHECK_FALSE(b->has_assignment());
    REQUIRE(wait_until([&] { return a.assignment().size() == 6; }, 20s));
    b.reset();
    CHECK(reg.render().find("omnibus_kafka_consumed_total{group=\"g.split\"} 120") != std::string::npos);
}

TEST_CASE("records whose handler did not finish are delivered again to the next member",
          "[kafka][integration][group]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.alo", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_n(s, reg, "t.alo", 20);

    std::atomic<int64_t> highest_seen{-1};
    {
        ConsumerOptions o;
        o.group_id = "g.alo";
        o.topics = {"t.alo"};
        o.retry_backoff = 50ms;
        o.handler = [&](const ConsumedRecord& r) {
            highest_seen = std::max<int64_t>(highest_seen, r.offset);
            return r.offset < 8 ? Disposition::done : Disposition::retry;  // "crashes" at offset 8
        };
        Consumer first(s, o, reg);
        REQUIRE(wait_until([&] { return highest_seen.load() >= 8; }, 15s));
        REQUIRE(first.stop());
    }
    CHECK(highest_seen.load() == 8);  // retry held the partition: nothing after 8 was handed out

    Collected again;
    ConsumerOptions o;
    o.group_id = "g.alo";
    o.topics = {"t.alo"};
    o.handler = [&](const ConsumedRecord& r) {
        again.add(r);
        return Disposition::done;
    };
    Consumer second(s, o, reg);
    REQUIRE(wait_until([&] { return again.size() >= 12; }, 15s));
    std::vector<ConsumedRecord> records = again.all();
    CHECK(records.front().offset == 8);  // 0..7 were committed, 8.. were not
    for (size_t i = 0; i < records.size(); ++i) CHECK(records[i].offset == static_cast<int64_t>(8 + i));
}

TEST_CASE("a retried record comes back before any later record of its partition", "[kafka][integration][group]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.retry", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_n(s, reg, "t.retry", 10);

    std::mutex mu;
    std::vector<int64_t> calls;
    int attempts_at_3 = 0;
    ConsumerOptions o;
    o.group_id = "g.retry";
    o.topics = {"t.retry"};
    o.retry_backoff = 50ms;
    o.handler = [&](const ConsumedRecord& r) {
        std::lock_guard lock(mu);
        calls.push_back(r.offset);
        if (r.offset == 3) {
            ++attempts_at_3;
            if (attempts_at_3 == 1) throw std::runtime_error("store unavailable");  // a throw counts as retry
            if (attempts_at_3 == 2) return Disposition::retry;
        }
        return Disposition::done;
    };
    Consumer consumer(s, o, reg);
    REQUIRE(wait_until(
        [&] {
            std::lock_guard lock(mu);
            return !calls.empty() && calls.back() == 9;
        },
        15s));
    consumer.stop();
    std::lock_guard lock(mu);
    CHECK(calls == std::vector<int64_t>{0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9});
    CHECK(reg.render().find("omnibus_kafka_consume_retries_total{group=\"g.retry\"} 2") != std::string::npos);
}

TEST_CASE("a member stopped while it joins the group closes cleanly", "[kafka][integration][group]") {
    // librdkafka before 2.3.0 aborts when a cooperative-sticky member is destroyed after its
    // JoinGroup response and before its first assignment; the Consumer waits for that
    // assignment before it closes. Members are stopped at spread-out moments of their join.
    EmbeddedCluster cluster;
    cluster.create_topic("t.join", 4);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    auto options = [] {
        ConsumerOptions o;
        o.group_id = "g.join";
        o.topics = {"t.join"};
        o.handler = [](const ConsumedRecord&) { return Disposition::done; };
        return o;
    };
    Consumer a(s, options(), reg);
    REQUIRE(wait_until([&] { return a.assignment().size() == 4; }, 15s));
    for (int i = 0; i < 5; ++i) {
        Consumer b(s, options(), reg);
        // The coordinator's JoinGroup response names the member; its assignment follows.
        REQUIRE(wait_until([&] { return !b.member_id().empty(); }, 15s, 1ms));
        CHECK(b.stop());
    }
    // The group still works: the first member holds every partition again.
    CHECK(wait_until([&] { return a.assignment().size() == 4; }, 20s));
}
