// Broker faults injected into the mock cluster: an outage fails every record through its
// callback (none dropped silently) and recovery delivers again; a transient
// NOT_ENOUGH_REPLICAS is retried by the idempotent producer without duplicates.
#include <catch2/catch.hpp>

#include <set>

#include "kafka_test_support.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

namespace {

constexpr int16_t kProduceApiKey = 0;  // Kafka protocol ApiKey of Produce requests

std::set<std::string> consume_values(const KafkaSettings& s, metrics::Registry& reg, const std::string& topic,
                                     size_t expect) {
    Collected got;
    ConsumerOptions o;
    o.group_id = "g." + topic;
    o.topics = {topic};
    o.handler = [&](const ConsumedRecord& r) {
        got.add(r);
        return Disposition::done;
    };
    Consumer consumer(s, o, reg);
    REQUIRE(wait_until([&] { return got.size() >= expect; }, 20s));
    consumer.stop();
    std::set<std::string> values;
    for (const auto& r : got.all()) values.insert(r.record.value);
    CHECK(values.size() == got.size());  // no duplicates
    return values;
}

}  // namespace

TEST_CASE("broker outage: every record fails through its callback, recovery delivers again",
          "[kafka][integration][faults]") {
    EmbeddedCluster cluster(3);
    cluster.create_topic("t.outage", 3, 3);
    KafkaSettings s = settings_for(cluster);
    s.message_timeout = 2000ms;
    // Reconnect quickly once the brokers are back: records the old producer takes after the
    // outage must reach a broker within its short message_timeout.
    s.client = {{"reconnect.backoff.max.ms", Secret("300")}};
    metrics::Registry reg;
    Producer producer(s, reg);

    Deliveries warmup;
    producer.produce(Record{"t.outage", "k", "before", {}}, warmup.callback());
    REQUIRE(producer.flush(10s) == 0);
    REQUIRE(warmup.ok() == 1);

    REQUIRE(cluster.command([](auto* m) { return rd_kafka_mock_broker_set_down(m, -1); }) == RD_KAFKA_RESP_ERR_NO_ERROR);
    constexpr int kDuringOutage = 50;
    Deliveries outage;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kDuringOutage; ++i)
        producer.produce(Record{"t.outage", "k" + std::to_string(i), "lost-" + std::to_string(i), {}}, outage.callback());
    REQUIRE(wait_until([&] { return outage.size() == kDuringOutage; }, 10s));
    auto failed_after = std::chrono::steady_clock::now() - t0;
    CHECK(outage.ok() == 0);
    for (const auto& r : outage.all()) {
        INFO(r.message);
        CHECK(r.error == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT);
    }
    CHECK(failed_after >= 2000ms);  // message_timeout, not earlier
    CHECK(producer.in_flight() == 0);
    CHECK(reg.render().find("omnibus_kafka_produce_errors_total{topic=\"t.outage\"} 50") != std::string::npos);

    REQUIRE(cluster.command([](auto* m) { return rd_kafka_mock_broker_set_up(m, -1); }) == RD_KAFKA_RESP_ERR_NO_ERROR);
    s.message_timeout = 10s;
    Producer fresh(s, reg);  // a new record through the old producer and through a new one
    Deliveries after;
    for (int i = 0; i < 10; ++i)
        (i % 2 ? fresh : producer).produce(Record{"t.outage", "k" + std::to_string(i), "after-" + std::to_string(i), {}},
                                           after.callback());
    REQUIRE(wait_until([&] { return after.size() == 10; }, 15s));
    for (const auto& r : after.all()) {
        INFO(r.message);
        CHECK(r.ok());
    }

    CHECK(high_watermark_total(s, "t.outage", 3) == 11);
    std::set<std::string> values = consume_values(s, reg, "t.outage", 11);
    CHECK(values.count("before") == 1);
    for (int i = 0; i < 10; ++i) CHECK(values.count("after-" + std::to_string(i)) == 1);
}

TEST_CASE("transient NOT_ENOUGH_REPLICAS is retried and each record is written once",
          "[kafka][integration][faults]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.nenr", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    Producer producer(s, reg);

    Deliveries warmup;
    producer.produce(Record{"t.nenr", "k", "warmup", {}}, warmup.callback());
    REQUIRE(producer.flush(10s) == 0);
    REQUIRE(warmup.ok() == 1);

    cluster.command([](auto* m) {
        rd_kafka_mock_push_request_errors(m, kProduceApiKey, 3, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                          RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    });
    Deliveries d;
    constexpr int n = 20;
    for (int i = 0; i < n; ++i) producer.produce(Record{"t.nenr", "k", "v-" + std::to_string(i), {}}, d.callback());
    REQUIRE(producer.flush(15s) == 0);
    CHECK(d.ok() == static_cast<size_t>(n));
    // Offsets follow production order: retries neither duplicated nor reordered anything.
    std::vector<DeliveryResult> all = d.all();
    for (size_t i = 1; i < all.size(); ++i) CHECK(all[i].offset == all[i - 1].offset + 1);

    CHECK(high_watermark_total(s, "t.nenr", 1) == n + 1);  // exactly once: no duplicate in the log
}
