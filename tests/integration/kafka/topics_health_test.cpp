// ensure_topics against the embedded cluster and against nothing, the mock's missing
// CreateTopics, the health probe through an outage, and embedded start-up time.
#include <catch2/catch.hpp>

#include "kafka/health.h"
#include "kafka/topics.h"
#include "kafka_test_support.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using Clock = std::chrono::steady_clock;

TEST_CASE("embedded cluster with the omnibus topics is ready well within a second", "[kafka][integration][topics]") {
    auto t0 = Clock::now();
    EmbeddedCluster cluster;
    KafkaSettings s = settings_for(cluster);
    s.replication_factor = 3;  // capped at the broker count
    EnsureTopicsResult r = ensure_topics(s, omnibus_topics(s), &cluster);
    auto elapsed = Clock::now() - t0;
    REQUIRE(r.ok());
    CHECK(r.created.size() == 8);
    CHECK(elapsed < 1s);
    WARN("embedded cluster + 8 topics in "
         << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() << " us");

    EnsureTopicsResult again = ensure_topics(s, omnibus_topics(s), &cluster);
    REQUIRE(again.ok());
    CHECK(again.created.empty());
    CHECK(again.existing.size() == 8);
    // The topics are there with their partition counts, as a client sees them.
    CHECK(high_watermark_total(s, "omnibus.inbound", 3) == 0);
    CHECK(high_watermark_total(s, "omnibus.identity", 1) == 0);
}

TEST_CASE("ensure_topics fails in bounded time when Kafka is unreachable", "[kafka][integration][topics]") {
    KafkaSettings s;
    s.brokers = "127.0.0.1:1";  // nothing listens there
    s.admin_timeout = 1500ms;
    auto t0 = Clock::now();
    EnsureTopicsResult r = ensure_topics(s, omnibus_topics(s));
    auto elapsed = Clock::now() - t0;
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.error, Catch::Contains("not reachable") && Catch::Contains("127.0.0.1:1"));
    CHECK(elapsed < 2500ms);
}

TEST_CASE("the mock cluster does not answer CreateTopics (why the embedded path exists)",
          "[kafka][integration][topics]") {
    EmbeddedCluster cluster;
    KafkaSettings s = settings_for(cluster);
    s.admin_timeout = 1000ms;
    auto t0 = Clock::now();
    EnsureTopicsResult r = ensure_topics(s, {TopicSpec{"t.admin", 1, 1, {}, false}});  // no embedded pointer
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.error, Catch::Contains("CreateTopics"));
    CHECK(Clock::now() - t0 < 2500ms);
}

TEST_CASE("health probe follows an outage of every broker", "[kafka][integration][health]") {
    EmbeddedCluster cluster(3);
    KafkaSettings s = settings_for(cluster);
    HealthProbe probe(s, 250ms);
    REQUIRE(wait_until([&] { return probe.reachable(); }, 5s));
    CHECK(probe.status().brokers == 3);

    auto t0 = Clock::now();
    cluster.command([](auto* m) { return rd_kafka_mock_broker_set_down(m, -1); });
    REQUIRE(wait_until([&] { return !probe.reachable(); }, 5s));
    auto detected = Clock::now() - t0;
    CHECK_FALSE(probe.status().error.empty());
    CHECK(detected < 1s);
    WARN("outage detected after " << std::chrono::duration_cast<std::chrono::milliseconds>(detected).count() << " ms");

    t0 = Clock::now();
    cluster.command([](auto* m) { return rd_kafka_mock_broker_set_up(m, -1); });
    REQUIRE(wait_until([&] { return probe.reachable(); }, 10s));
    WARN("recovery detected after "
         << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms");
}
