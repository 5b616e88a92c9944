// EmbeddedCluster: librdkafka's mock Kafka cluster, in-process, for `kafka.embedded: true` and tests.
//
// DEV ONLY. The mock brokers speak the real Kafka protocol over loopback TCP (producers,
// idempotence, consumer groups with offset commits, kcat all work), but:
//   - nothing is durable: the log lives in memory and dies with the process;
//   - each partition keeps only its newest ~5 MB or 100,000 messages, older ones are dropped;
//   - cleanup.policy=compact and other topic configs are ignored: it never compacts;
//   - it does not answer the CreateTopics admin request (the request times out), so
//     ensure_topics() creates topics here with rd_kafka_mock_topic_create instead;
//   - replication is simulated (create_topic caps the factor at the broker count);
//   - producing to or subscribing to an unknown topic auto-creates it (the mock answers
//     Metadata below v4, so allow.auto.create.topics=false cannot be expressed);
//   - a consumer group's first join waits 3 s, later rebalances session.timeout.ms - 1 s.
// Start-up takes a few milliseconds; destruction occasionally takes about a second (librdkafka
// internal, not fixable from here).
//
// librdkafka 2.0.2's mock thread sometimes misses the wake-up for a command (topic create,
// broker down/up, destroy) and serves it only at its next 1 s poll timeout. command(),
// create_topic() and the destructor work around it by connecting to a broker port every
// few milliseconds while the command waits, which wakes the mock thread's poll().
//
// Threads: the mock brokers run on a thread librdkafka owns. All methods may be called from
// any thread; the object must outlive every client connected to it.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "kafka/client_handle.h"

namespace omnibus::kafka {

class EmbeddedCluster {
public:
    explicit EmbeddedCluster(int brokers = 1);
    ~EmbeddedCluster();
    EmbeddedCluster(const EmbeddedCluster&) = delete;
    EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

    // "127.0.0.1:port,..." for bootstrap.servers.
    const std::string& bootstrap_servers() const { return bootstrap_; }
    int broker_count() const { return brokers_; }

    // Creates a topic and returns true, or returns false when it exists already (left alone).
    // replication_factor is capped at the broker count. Throws std::runtime_error on failure.
    bool create_topic(const std::string& name, int partitions, int replication_factor = 1);

    // For fault injection in tests: rd_kafka_mock_broker_set_down/_set_up (broker ids 1..N,
    // -1 for all), rd_kafka_mock_push_request_errors, rd_kafka_mock_broker_set_rtt, ...
    rd_kafka_mock_cluster_t* mock() const { return mock_.get(); }

    // Runs fn(mock()) with the wake-up workaround above; returns what fn returns.
    //   cluster.command([](auto* m) { return rd_kafka_mock_broker_set_down(m, -1); });
    template <class F>
    auto command(F&& fn) {
        using R = decltype(fn(mock_.get()));
        if constexpr (std::is_void_v<R>) {
            with_wakeups([&] { fn(mock_.get()); });
        } else {
            R result{};
            with_wakeups([&] { result = fn(mock_.get()); });
            return result;
        }
    }

private:
    void with_wakeups(const std::function<void()>& fn) const;

    struct MockDeleter {
        void operator()(rd_kafka_mock_cluster_t* p) const { rd_kafka_mock_cluster_destroy(p); }
    };
    int brokers_;
    detail::ClientContext ctx_;
    detail::HandlePtr host_;  // the rd_kafka_t the mock cluster needs for its bookkeeping
    std::unique_ptr<rd_kafka_mock_cluster_t, MockDeleter> mock_;  // destroyed before host_
    std::string bootstrap_;
    std::vector<uint16_t> ports_;  // of the brokers' listeners, for wake-ups
};

}  // namespace omnibus::kafka
