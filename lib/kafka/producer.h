// Producer: asynchronous, idempotent (acks=all) Kafka producer with one delivery callback per record.
//
// Threads and ownership:
//   - produce(), flush(), in_flight() may be called from any thread, concurrently.
//   - Delivery reports are served by one thread at a time: the Producer's poll thread
//     (started by the constructor), or an event loop handed in with serve_deliveries_on()
//     (an edge worker, whose answers the reports complete). Whoever serves runs every
//     DeliveryCallback and owns the per-topic metric cache, under serve_mu_, so callbacks
//     never run concurrently with each other. They must be quick and must not call
//     flush(); calling produce() from one is fine (e.g. to dead-letter a record).
//   - The rd_kafka_t is thread-safe; the local-failure queue is guarded by local_mu_.
//
// Guarantees:
//   - produce() never blocks on the network or on a full queue.
//   - Each DeliveryCallback runs exactly once, on the serving thread, whether the record was
//     acknowledged (acks=all), failed remotely, timed out (kafka.message_timeout), or was
//     refused locally (queue full, message too large, unknown partition, producer closing):
//     local refusals are handed to the serving thread, never returned to the caller.
//   - The destructor flushes for up to kafka.close_timeout, then purges what is left; every
//     outstanding callback has run (with an error for purged records) when it returns.
//
// Record mapping: key "" → null key (librdkafka's partitioner then picks a partition at
// random), value is sent as is ("" is an empty value, not a tombstone; Record::tombstone
// sends a null value), headers become Kafka record headers in order. Records with the same
// key go to the same partition; Record::partition >= 0 pins the partition instead.
//
// Idempotence is always on and cannot be disabled through kafka.client (see client_config.h):
// librdkafka retries transient broker errors (NOT_ENOUGH_REPLICAS, leader changes,
// disconnects) without duplicates or reordering within message_timeout.
//
// Transactions (a Producer made with a transactional_id): init_transactions() once, then
// begin_transaction(), produce, commit_transaction(offsets, group) or abort_transaction(),
// begin again. A record produced outside a transaction fails locally (its callback reports
// _STATE). Delivery callbacks still run as records are acknowledged, before the commit: an
// acknowledged record of a transaction that is then aborted is never seen by read_committed
// consumers. The three transaction calls block (bounded by their timeout), must be called
// from one thread at a time, never from a DeliveryCallback, and expect the caller to have
// waited for the callbacks of the records it produced (the commit waits for stragglers
// itself, but librdkafka would otherwise serve their callbacks on the calling thread). The
// kafka::Consumer's transactional mode (consumer.h) is the one caller.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kafka/client_handle.h"
#include "kafka/record.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"

namespace omnibus::kafka {

struct DeliveryResult {
    rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;  // librdkafka's code; local ones start with "_"
    std::string message;                                       // human text, empty on success
    std::string topic;
    int32_t partition = -1;  // -1 when the record never got one
    int64_t offset = -1;     // -1 unless acknowledged
    std::chrono::nanoseconds latency{0};  // produce() → callback

    bool ok() const { return error == RD_KAFKA_RESP_ERR_NO_ERROR; }
};

using DeliveryCallback = std::function<void(const DeliveryResult&)>;

// What became of a transaction.
enum class TxnOutcome {
    committed,  // its records and offsets are visible (read_committed)
    aborted,    // none of them are; begin a new one and redo the work from the committed offsets
    fatal,      // the producer cannot go on (fenced by a newer instance, or unknown state): replace it
};
// How long a commit or an abort that ran out of time is resumed past its deadline (see
// Producer::commit_transaction).
inline constexpr std::chrono::milliseconds kTxnResumeGrace{30000};

struct TxnResult {
    TxnOutcome outcome = TxnOutcome::committed;
    std::string error;  // why, when not committed
};

class Producer {
public:
    // Throws ConfigError on bad settings. Metrics are registered in `metrics`, which must
    // outlive the Producer; `labels` tell the queue-depth gauge of a second producer in the
    // same registry apart (the per-topic counters are shared).
    // A non-empty `transactional_id` makes a transactional producer (see the top of this file).
    Producer(const KafkaSettings& settings, metrics::Registry& metrics, metrics::Labels labels = {},
             std::string transactional_id = {});
    ~Producer();
    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;

    // Queues `rec` (moved: key and value are handed to librdkafka without a copy) and returns.
    // `cb` runs exactly once on the poll thread; see the guarantees above.
    void produce(Record rec, DeliveryCallback cb);

    // Waits until every callback of records produced so far has run, or `timeout`.
    // Returns how many were still outstanding. Must not be called from a DeliveryCallback.
    size_t flush(std::chrono::milliseconds timeout);

    // Fetches metadata for `topics` now, bounded by `timeout`. librdkafka connects lazily, and
    // without this the first records to a topic wait up to ~1 s for its periodic topic scan.
    // Call at start-up after ensure_topics(). Returns false when the metadata did not arrive
    // in time (records still work; the first ones are only slower).
    bool warm_up(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);

    // Where delivery reports are served. By default the poll thread serves them: the
    // broker thread that reads an acknowledgement wakes it, it runs the callbacks, and
    // they hand the answers to the edge worker that writes them: two wake-ups per batch.
    // serve_deliveries_on(post) serves them where `post(fn)` runs fn instead (an edge
    // worker's event loop), one wake-up per batch: librdkafka tells this producer when a
    // report is queued and it posts one serve() for everything queued by then. The poll
    // thread stays as a safety net that serves what is left every few milliseconds.
    // `post` must run fn soon, on any one thread, and must not run it inline; it returns
    // false when it cannot take fn (the loop is stopping), and the next report tries again.
    // It is called from librdkafka's threads and from produce(), never under a lock of the
    // caller's. The thread that runs fn must not call flush().
    // serve_deliveries_on_own_thread() gives it back to the poll thread; once it returns
    // `post` is not called again. A fn posted before may still run later: it serves then,
    // or does nothing once the Producer is destroyed (the destructor waits for one that
    // is running). The destructor gives the serving back itself.
    using Post = std::function<bool(std::function<void()>)>;
    void serve_deliveries_on(Post post);
    void serve_deliveries_on_own_thread();

    // Transactions (see the top of this file). init_transactions: "" when the producer is ready,
    // else why not (a cluster without transactions, a coordinator that did not answer in time:
    // the caller may try again or go on without transactions, with a non-transactional
    // Producer). begin_transaction: "" or why not.
    bool transactional() const { return !transactional_id_.empty(); }
    // `code` (optional) gets librdkafka's error code: _UNSUPPORTED_FEATURE or an authorization
    // error mean the cluster will not give this producer transactions.
    std::string init_transactions(std::chrono::milliseconds timeout, rd_kafka_resp_err_t* code = nullptr);
    std::string begin_transaction();
    // Sends `offsets` (the next offset to consume, per partition; may be empty) for `group`
    // with the transaction and commits it. Any error the transaction can survive aborts it
    // (outcome aborted); a fatal one, or an abort that does not finish in time, is fatal.
    // A commit or an abort that runs out of time goes on in librdkafka's background and is
    // resumed by calling again: it is resumed for up to `abort_grace` past the timeout (0 at
    // shutdown, when the broker's transaction timeout may as well end it); an abort that still
    // does not finish leaves the producer failed (fatal).
    TxnResult commit_transaction(const std::vector<std::pair<TopicPartition, int64_t>>& offsets,
                                 const rd_kafka_consumer_group_metadata_t* group, std::chrono::milliseconds timeout,
                                 std::chrono::milliseconds abort_grace = kTxnResumeGrace);
    TxnResult abort_transaction(std::chrono::milliseconds timeout, std::string why = "aborted by its owner",
                                std::chrono::milliseconds abort_grace = kTxnResumeGrace);
    bool in_transaction() const { return in_transaction_.load(); }

    // Records whose callback has not run yet.
    size_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }

    // True after librdkafka reported all brokers down, until the next acknowledged record.
    bool brokers_down() const { return ctx_.all_brokers_down.load(); }
    // A fatal (idempotence) error: every later record fails; the daemon must restart the producer.
    bool fatal() const { return ctx_.fatal.load(); }

private:
    struct Pending;
    struct TopicMetrics {
        metrics::Counter* produced;
        metrics::Counter* errors;
        metrics::Histogram* delivery;
    };
    struct LocalFailure {
        Pending* pending;
        rd_kafka_resp_err_t error;
        std::string topic;
    };
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
    static void on_queue_event(rd_kafka_t* rk, void* opaque);  // librdkafka thread: a report is queued
    void complete(Pending* p, DeliveryResult& result);  // serving thread
    TopicMetrics& topic_metrics(std::string_view topic);  // serving thread
    void drain_local_failures();                           // serving thread
    void serve(int timeout_ms);                            // under serve_mu_
    void serve_posted();                                   // posted by schedule_serve()
    bool schedule_serve();  // posts a serve() unless one is pending; false when nothing serves outside
    void wake_server();     // something to serve that librdkafka does not know of
    void poll_loop();
    void fail_locally(Pending* p, rd_kafka_resp_err_t err, std::string topic);
    void notify_if_idle();
    TxnResult abort_locked(std::chrono::steady_clock::time_point deadline, std::string why,
                           std::chrono::milliseconds grace);  // under txn_mu_
    void take_serving(std::unique_lock<std::mutex>& serve);  // locks serve_mu_ ahead of the poll thread

    KafkaSettings settings_;
    metrics::Registry& metrics_;
    std::string transactional_id_;
    std::mutex txn_mu_;  // one transaction call at a time
    std::atomic<bool> in_transaction_{false};
    std::atomic<int> serve_wanted_{0};  // transaction calls waiting for serve_mu_
    metrics::Counter* txn_committed_ = nullptr;
    metrics::Counter* txn_aborted_ = nullptr;
    detail::ClientContext ctx_;  // outlives rk_
    detail::HandlePtr rk_;
    detail::QueuePtr main_queue_;  // the delivery reports' queue; released before rk_

    std::atomic<size_t> in_flight_{0};
    std::atomic<bool> closing_{false};
    std::atomic<bool> stop_{false};

    std::mutex local_mu_;
    std::vector<LocalFailure> local_failures_;  // guarded by local_mu_

    std::mutex idle_mu_;  // with idle_cv_: flush() waiting for in_flight_ == 0
    std::condition_variable idle_cv_;
    std::atomic<int> flush_waiters_{0};

    // Owned by the serving thread (and by the destructor once the poll thread has exited).
    std::unordered_map<std::string, TopicMetrics, StringHash, std::equal_to<>> topic_metrics_;

    // Who serves (see serve_deliveries_on).
    struct ServeGate {  // shared with the serves posted: they may run after the Producer is gone
        std::mutex mu;
        Producer* producer;  // guarded by mu; null once the destructor began
    };
    std::shared_ptr<ServeGate> gate_;
    std::mutex serve_mu_;  // held while serving: callbacks never run concurrently
    std::mutex post_mu_;   // guards post_
    Post post_;            // empty: the poll thread serves
    std::atomic<bool> external_{false};         // post_ is set
    std::atomic<bool> serve_scheduled_{false};  // a serve_posted() is posted and has not begun
    std::mutex mode_mu_;                        // with mode_cv_: the poll thread's wait while
    std::condition_variable mode_cv_;           // another thread serves

    // Registered gauge_fn reads the queue depth through this; reset in the destructor so a
    // registry that outlives the Producer reads 0 instead of a dead handle.
    struct QueueDepth {
        std::mutex mu;
        rd_kafka_t* rk = nullptr;
    };
    std::shared_ptr<QueueDepth> queue_depth_;

    std::thread poll_thread_;
};

}  // namespace omnibus::kafka
