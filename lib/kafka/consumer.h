// Consumer: a member of a Kafka consumer group that hands each record to a handler and stores
// its offset only after the handler is done with it (at-least-once).
//
// Threads and ownership:
//   - One consumer thread per Consumer (started by the constructor) owns the rd_kafka_t's
//     polling, the rebalance callback, the retry bookkeeping, and runs every handler and
//     hook: handler, on_assigned and on_revoked never run concurrently with each other.
//   - assignment(), has_assignment() and stop() may be called from any thread; the
//     assignment snapshot is guarded by assignment_mu_.
//
// Semantics:
//   - Group protocol: cooperative-sticky with incremental assign/unassign, so a rebalance
//     only moves the partitions that change owner; the others keep flowing.
//   - on_assigned(partitions) runs before any record of those partitions reaches the
//     handler (restore state there). on_revoked(partitions) runs after the stored offsets
//     were committed synchronously and before the partitions are given up (flush state
//     there). Lost partitions (session expired) are reported through on_revoked too, without
//     a commit: another member may already own them.
//   - Offsets: enable.auto.offset.store=false. When the handler returns Disposition::done
//     the record's offset+1 is stored; stored offsets are committed in the background every
//     kafka.commit_interval, and synchronously on revoke and on close. A record whose
//     handler did not return done is therefore delivered again: after a restart or
//     rebalance to whoever owns the partition next.
//   - Disposition::retry: the offset is not stored, the partition is paused and rewound to
//     this record, and the record is handed out again after ConsumerOptions::retry_backoff.
//     Later records of that partition wait (per-partition order is kept); other partitions
//     keep flowing. A handler that throws is treated as retry (and logged). Poison records
//     therefore block their partition: the handler should dead-letter what it can never
//     process and return done.
//   - stop() (and the destructor) lets the running handler finish, then closes the consumer
//     within kafka.close_timeout: revoke hooks run, offsets are committed, the group is left.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka/client_handle.h"
#include "kafka/record.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"

namespace omnibus::kafka {

struct ConsumedRecord {
    Record record;  // a null key or value arrives as ""
    int32_t partition = 0;
    int64_t offset = 0;
    int64_t timestamp_ms = -1;  // record timestamp (producer's create time), -1 if none
};

enum class Disposition {
    done,   // processed: store the offset
    retry,  // not processed: hand this record out again after retry_backoff
};

using RecordHandler = std::function<Disposition(const ConsumedRecord&)>;
using PartitionsHook = std::function<void(const std::vector<TopicPartition>&)>;

struct ConsumerOptions {
    std::string group_id;
    std::vector<std::string> topics;
    RecordHandler handler;
    PartitionsHook on_assigned;  // optional
    PartitionsHook on_revoked;   // optional
    std::chrono::milliseconds retry_backoff{500};
};

class Consumer {
public:
    // Subscribes and starts the consumer thread. Throws ConfigError on bad settings and
    // std::invalid_argument without group, topics or handler. `metrics` must outlive it.
    Consumer(const KafkaSettings& settings, ConsumerOptions options, metrics::Registry& metrics);
    ~Consumer();  // stop()
    Consumer(const Consumer&) = delete;
    Consumer& operator=(const Consumer&) = delete;

    // Closes the consumer (see above) and joins its thread. Idempotent. Returns false when
    // the close did not complete within kafka.close_timeout (the handle is destroyed anyway).
    // Must not be called from the handler or a hook.
    bool stop();

    // The partitions currently assigned to this member (snapshot).
    std::vector<TopicPartition> assignment() const;
    // For readiness: at least one partition assigned.
    bool has_assignment() const { return assigned_count_.load() > 0; }

    bool brokers_down() const { return ctx_.all_brokers_down.load(); }
    bool fatal() const { return ctx_.fatal.load(); }

private:
    struct Paused {
        TopicPartition tp;
        std::chrono::steady_clock::time_point resume_at;
    };

    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                             void* opaque);
    void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);  // consumer thread
    void run();                                                                        // consumer thread
    void handle(const rd_kafka_message_t* msg);                                        // consumer thread
    void retry_later(const rd_kafka_message_t* msg);                                   // consumer thread
    void resume_due();                                                                 // consumer thread
    bool is_paused(const char* topic, int32_t partition) const;                        // consumer thread
    void commit_sync(const char* why);                                                 // consumer thread
    bool close_handle();                                                               // consumer thread
    void call_hook(const PartitionsHook& hook, const std::vector<TopicPartition>& parts, const char* name);
    void set_assignment(std::vector<TopicPartition> parts);

    KafkaSettings settings_;
    ConsumerOptions options_;
    detail::ClientContext ctx_;  // outlives rk_
    detail::HandlePtr rk_;

    metrics::Counter* consumed_;
    metrics::Counter* retried_;
    metrics::Counter* rebalances_;

    std::atomic<bool> stop_{false};
    std::atomic<bool> closed_ok_{true};
    std::mutex stop_mu_;  // serialises stop() callers

    std::vector<Paused> paused_;  // consumer thread only

    mutable std::mutex assignment_mu_;
    std::vector<TopicPartition> assignment_;  // guarded by assignment_mu_, sorted
    std::atomic<size_t> assigned_count_{0};

    std::thread thread_;
};

}  // namespace omnibus::kafka
