// HealthProbe: whether Kafka is reachable, for /readyz, answered from memory without blocking.
//
// Threads: one probe thread owns the probe's rd_kafka_t. Every `interval` it runs a metadata
// request bounded by min(interval, kafka.admin_timeout); in between it serves librdkafka's
// error callback, so "all brokers down" marks Kafka unreachable at once rather than at the
// next probe. status()/reachable() may be called from any thread and only read a snapshot
// guarded by mu_.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "kafka/client_handle.h"
#include "kafka/settings.h"

namespace omnibus::kafka {

struct KafkaHealth {
    bool reachable = false;  // false until the first probe succeeds
    int brokers = 0;         // brokers the last successful probe saw
    std::string error;       // why not reachable
    std::chrono::steady_clock::time_point checked_at{};
};

class HealthProbe {
public:
    // Throws ConfigError on bad settings. The first probe starts at once.
    explicit HealthProbe(const KafkaSettings& settings, std::chrono::milliseconds interval = std::chrono::seconds(2));
    ~HealthProbe();
    HealthProbe(const HealthProbe&) = delete;
    HealthProbe& operator=(const HealthProbe&) = delete;

    KafkaHealth status() const;
    bool reachable() const;

private:
    void run();
    void probe();
    void publish(KafkaHealth h);

    KafkaSettings settings_;
    std::chrono::milliseconds interval_;
    std::chrono::milliseconds probe_timeout_;
    detail::ClientContext ctx_;  // outlives rk_
    detail::HandlePtr rk_;

    mutable std::mutex mu_;
    KafkaHealth health_;  // guarded by mu_
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace omnibus::kafka
