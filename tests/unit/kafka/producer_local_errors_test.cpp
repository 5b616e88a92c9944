// Producer errors that happen before any broker is involved still arrive, once, through the
// delivery callback on the poll thread. No broker runs here (bootstrap is a closed port).
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "support/wait.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace std::chrono_literals;

namespace {

KafkaSettings offline_settings() {
    KafkaSettings s;
    s.brokers = "127.0.0.1:1";  // nothing listens there
    s.message_timeout = 60s;
    s.close_timeout = 200ms;
    return s;
}

struct Results {
    std::mutex mu;
    std::vector<DeliveryResult> all;
    std::vector<std::thread::id> threads;
    DeliveryCallback callback() {
        return [this](const DeliveryResult& r) {
            std::lock_guard lock(mu);
            all.push_back(r);
            threads.push_back(std::this_thread::get_id());
        };
    }
    size_t size() {
        std::lock_guard lock(mu);
        return all.size();
    }
};

}  // namespace

TEST_CASE("a record over message.max.bytes fails through its callback", "[kafka][producer]") {
    metrics::Registry registry;
    Results results;
    {
        Producer producer(offline_settings(), registry);
        producer.produce(Record{"omnibus.inbound", "k", std::string(2'000'000, 'x'), {}}, results.callback());
        REQUIRE(omnibus::test::wait_until([&] { return results.size() == 1; }, 5s));
        // The count drops on the poll thread just after the callback returns.
        CHECK(omnibus::test::wait_until([&] { return producer.in_flight() == 0; }, 1s));
    }
    REQUIRE(results.all.size() == 1);
    const DeliveryResult& r = results.all[0];
    CHECK(r.error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    CHECK_FALSE(r.message.empty());
    CHECK(r.topic == "omnibus.inbound");
    CHECK(r.offset == -1);
    CHECK(results.threads[0] != std::this_thread::get_id());  // the poll thread, not the caller
    CHECK(registry.render().find("omnibus_kafka_produce_errors_total{topic=\"omnibus.inbound\"} 1") !=
          std::string::npos);
}

TEST_CASE("queue full never blocks and every record gets exactly one callback", "[kafka][producer]") {
    metrics::Registry registry;
    Results results;
    KafkaSettings s = offline_settings();
    s.client = {{"queue.buffering.max.messages", Secret("2")}};
    constexpr int n = 10;
    {
        Producer producer(s, registry);
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i)
            producer.produce(Record{"omnibus.events", "k" + std::to_string(i), "v", {{"h", "1"}}}, results.callback());
        CHECK(std::chrono::steady_clock::now() - t0 < 1s);
        // 8 refused at once; 2 wait in librdkafka's queue for a broker that never comes.
        REQUIRE(omnibus::test::wait_until([&] { return results.size() == n - 2; }, 5s));
        CHECK(producer.flush(50ms) == 2);
    }  // the destructor flushes for close_timeout, then purges the 2
    REQUIRE(results.all.size() == n);
    int queue_full = 0, purged = 0;
    for (const auto& r : results.all) {
        if (r.error == RD_KAFKA_RESP_ERR__QUEUE_FULL) ++queue_full;
        if (r.error == RD_KAFKA_RESP_ERR__PURGE_QUEUE) ++purged;
    }
    CHECK(queue_full == n - 2);
    CHECK(purged == 2);
}

TEST_CASE("records produced while the producer closes are refused, not lost", "[kafka][producer]") {
    metrics::Registry registry;
    Results results;
    auto producer = std::make_unique<Producer>(offline_settings(), registry);
    producer->produce(Record{"omnibus.inbound", "", "v", {}}, results.callback());
    producer.reset();
    REQUIRE(results.all.size() == 1);
    CHECK_FALSE(results.all[0].ok());
}

TEST_CASE("consumer options are checked", "[kafka][consumer]") {
    metrics::Registry registry;
    ConsumerOptions o;
    o.topics = {"omnibus.inbound"};
    o.handler = [](const ConsumedRecord&) { return Disposition::done; };
    CHECK_THROWS_AS(Consumer(offline_settings(), o, registry), std::invalid_argument);  // no group
    o.group_id = "g";
    o.handler = nullptr;
    CHECK_THROWS_AS(Consumer(offline_settings(), o, registry), std::invalid_argument);  // no handler
}
