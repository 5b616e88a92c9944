// Helpers of the Kafka integration tests: settings for an EmbeddedCluster, collecting
// delivery results and consumed records, high watermarks, running kcat.
#pragma once

#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kafka/client_config.h"
#include "kafka/client_handle.h"
#include "kafka/consumer.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "support/process.h"
#include "support/wait.h"

namespace omnibus::kafka::test {

using namespace std::chrono_literals;
using omnibus::test::wait_until;

// Fast group membership and commits against the in-process cluster: the mock coordinator
// waits 3 s for a group's first members and session.timeout.ms - 1 s on later rebalances.
inline KafkaSettings settings_for(const EmbeddedCluster& c) {
    KafkaSettings s;
    s.brokers = c.bootstrap_servers();
    s.embedded = true;
    s.replication_factor = 1;
    s.partitions = 3;
    s.message_timeout = 10s;
    s.close_timeout = 5s;
    s.session_timeout = 3500ms;  // > the mock's 3 s initial join delay, or members expire while joining
    s.heartbeat_interval = 100ms;
    s.commit_interval = 100ms;
    s.admin_timeout = 3s;
    return s;
}

class Deliveries {
public:
    DeliveryCallback callback() {
        return [this](const DeliveryResult& r) {
            std::lock_guard lock(mu_);
            results_.push_back(r);
        };
    }
    size_t size() const {
        std::lock_guard lock(mu_);
        return results_.size();
    }
    size_t ok() const {
        std::lock_guard lock(mu_);
        size_t n = 0;
        for (const auto& r : results_) n += r.ok();
        return n;
    }
    std::vector<DeliveryResult> all() const {
        std::lock_guard lock(mu_);
        return results_;
    }

private:
    mutable std::mutex mu_;
    std::vector<DeliveryResult> results_;
};

class Collected {
public:
    void add(const ConsumedRecord& r) {
        std::lock_guard lock(mu_);
        records_.push_back(r);
    }
    size_t size() const {
        std::lock_guard lock(mu_);
        return records_.size();
    }
    std::vector<ConsumedRecord> all() const {
        std::lock_guard lock(mu_);
        return records_;
    }

private:
    mutable std::mutex mu_;
    std::vector<ConsumedRecord> records_;
};

// Sum over partitions of the high watermark: how many records the log holds (the mock keeps
// all of them at these sizes), counted without consuming.
inline int64_t high_watermark_total(const KafkaSettings& s, const std::string& topic, int partitions) {
    detail::ClientContext ctx;
    ctx.role = "test";
    detail::HandlePtr rk = detail::new_handle(RD_KAFKA_CONSUMER, detail::make_conf(admin_properties(s)), ctx);
    int64_t total = 0;
    for (int p = 0; p < partitions; ++p) {
        int64_t low = 0, high = 0;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &low, &high, 5000);
        if (err) throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
        total += high;
    }
    return total;
}

// Produces n records ("key-i", "i") and waits for every acknowledgement; throws on failure.
inline std::vector<DeliveryResult> produce_n(const KafkaSettings& s, metrics::Registry& reg, const std::string& topic,
                                             int n) {
    Deliveries d;
    {
        Producer producer(s, reg);
        for (int i = 0; i < n; ++i)
            producer.produce(Record{topic, "key-" + std::to_string(i), std::to_string(i), {}}, d.callback());
        if (producer.flush(15s) != 0) throw std::runtime_error("produce_n: flush timed out");
    }
    if (d.ok() != static_cast<size_t>(n)) throw std::runtime_error("produce_n: not every record was acknowledged");
    return d.all();
}

// The group's committed offset of one partition (OffsetFetch, as a new member would start),
// or RD_KAFKA_OFFSET_INVALID when none was committed.
inline int64_t committed_offset(const KafkaSettings& s, const std::string& group, const std::string& topic,
                                int32_t partition) {
    detail::ClientContext ctx;
    ctx.role = "test";
    detail::HandlePtr rk = detail::new_handle(RD_KAFKA_CONSUMER, detail::make_conf(consumer_properties(s, group)), ctx);
    detail::PartitionListPtr list = detail::to_list({{topic, partition}});
    if (rd_kafka_resp_err_t err = rd_kafka_committed(rk.get(), list.get(), 5000))
        throw std::runtime_error(std::string("committed: ") + rd_kafka_err2str(err));
    if (list->elems[0].err) throw std::runtime_error(std::string("committed: ") + rd_kafka_err2str(list->elems[0].err));
    return list->elems[0].offset;
}

// Runs a shell command and returns its standard output.
inline std::string run(const std::string& cmd) { return omnibus::test::run_capture(cmd); }

inline std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
        if (i == s.size() || s[i] == sep) {
            out.push_back(s.substr(start, i - start));
            start = i + 1;
        }
    }
    return out;
}

}  // namespace omnibus::kafka::test
