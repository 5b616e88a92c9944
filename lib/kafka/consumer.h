// Consumer: a member of a Kafka consumer group that hands each record to a handler and stores
// its offset only after the work on it is done (at-least-once).
//
// Threads and ownership:
//   - One consumer thread per Consumer (started by the constructor) owns the rd_kafka_t's
//     polling, the rebalance callback, the per-partition bookkeeping (PartitionState: retry
//     pauses, records in flight, stored offsets), and runs every handler and hook: handler,
//     async_handler, on_assigned and on_revoked never run concurrently with each other.
//   - assignment(), has_assignment(), in_flight() and stop() may be called from any thread; the
//     assignment snapshot is guarded by assignment_mu_.
//   - A Completion may be called or destroyed on any thread, also after the Consumer is gone.
//     It only posts to the CompletionInbox (its own mutex), which the consumer thread drains;
//     no user code runs under that mutex.
//
// Semantics (both modes):
//   - Group protocol: cooperative-sticky with incremental assign/unassign, so a rebalance
//     only moves the partitions that change owner; the others keep flowing.
//   - on_assigned(partitions) runs before any record of those partitions reaches the
//     handler (restore state there). Lost partitions (session expired) are reported through
//     on_revoked too, without a commit and without waiting: another member may already own
//     them.
//   - Offsets: enable.auto.offset.store=false. Only offsets of finished work are stored; stored
//     offsets are committed in the background every kafka.commit_interval, and synchronously
//     (bounded by kafka.close_timeout) on revoke and on close. A record whose work did not
//     finish is therefore delivered again: after a restart or rebalance to whoever owns the
//     partition next.
//   - stop() (and the destructor) lets the running handler finish, then closes the consumer:
//     everything assigned is revoked as in a rebalance (below), the group is left. A member
//     the coordinator has named but not yet given its first assignment waits for it first,
//     at most kafka.close_timeout: librdkafka before 2.3.0 aborts when such a member is
//     destroyed (consumer.cpp, await_first_assignment).
//
// Synchronous mode (ConsumerOptions::handler):
//   - The handler returns Disposition::done: the record's offset+1 is stored.
//   - on_revoked(partitions) runs after the stored offsets were committed synchronously and
//     before the partitions are given up (flush state there).
//   - Disposition::retry: the offset is not stored, the partition is paused and rewound to
//     this record, and the record is handed out again after ConsumerOptions::retry_backoff.
//     Later records of that partition wait (per-partition order is kept); other partitions
//     keep flowing. A handler that throws is treated as retry (and logged). Poison records
//     therefore block their partition: the handler should dead-letter what it can never
//     process and return done.
//
// Asynchronous mode (ConsumerOptions::async_handler), for work that outlives the call (HTTP
// requests of seconds to minutes, many customers at once):
//   - async_handler(record, completion) runs on the consumer thread and must not block: it
//     hands the record and its Completion to whoever does the work. That owner calls
//     completion.done() when the work is finished, or completion.abandon() when it gives the
//     record up unprocessed (after a revocation, at shutdown). Exactly one call counts; later
//     ones are ignored. Destroying a Completion that was never called counts as abandon and
//     is logged (once per Consumer) as a bug of the owner. A throwing async_handler is logged;
//     its Completion is destroyed uncalled, so the record counts as abandoned.
//   - Records may complete in any order. Per partition, the stored offset is the lowest offset
//     not done yet: the contiguous prefix of done records, +1. Completions are posted to the
//     consumer thread (which wakes at once: rd_kafka_queue_yield) and stored from there with
//     rd_kafka_offsets_store.
//   - abandon(): the abandoned record holds its partition's stored offset at that record: it
//     and everything after it are delivered again. While this member keeps the partition, the
//     partition is paused at once (no new records of it), and when none of its records is in
//     flight any more it is rewound to the abandoned record and resumes after retry_backoff,
//     in order (records after it that were done are handed out again: at-least-once). When the
//     partition goes away first, its next owner starts at the abandoned record.
//   - ConsumerOptions::max_in_flight bounds the records handed out and neither done nor
//     abandoned: at the bound, every assigned partition is paused (polling goes on, so
//     rebalances are served and the member stays in the group); below three quarters of the
//     bound (each pause throws librdkafka's prefetched records away) they resume, each with a
//     seek to the record after the last one handed out. Pausing never skips, repeats or
//     reorders a record. in_flight() and the gauge omnibus_kafka_consume_in_flight show the
//     count.
//   - Revocation (cooperative, incremental): on_revoked(partitions) runs first, so the owner
//     can finish or abandon their work; then the consumer waits up to kafka.close_timeout for
//     their outstanding records to be completed or abandoned (serving completions of every
//     partition meanwhile), stores what is contiguous, commits synchronously and gives the
//     partitions up. Completions that arrive later for partitions no longer owned, or owned
//     again in a newer assignment (each assignment of a partition has its own generation),
//     are ignored: they never store an offset. Lost partitions: on_revoked, no wait, no commit,
//     later completions ignored. stop() revokes everything this way (the wait for records in
//     flight does not count against the close's own kafka.close_timeout).
//
// Transactional mode (asynchronous mode with ConsumerOptions::transactional_producer): the
// handlers produce through that producer, and what they produce becomes visible together with
// the input offsets it came from, or not at all (consume-transform-produce, exactly once for
// read_committed readers). Offsets are never stored or committed outside a transaction.
//   - A transaction is open whenever a record is handed out. Every transaction_interval, when
//     records were handed out since the last commit, the consumer stops handing out records,
//     waits for every record in flight (until each is done or abandoned, at most
//     kafka.message_timeout + kafka.close_timeout), and commits the transaction with the
//     offsets of what is done.
//   - Abort: when the commit fails in a way the transaction survives (librdkafka's abortable
//     errors: a record the broker refused, a lost coordinator, a generation the group moved
//     past), when a record is abandoned, or when records in flight do not finish in time, the
//     transaction is aborted: nothing it wrote is visible. on_aborted(partitions) then runs
//     with every assigned partition, and must put the owner's state back to what it was at the
//     last commit; every partition is handed out again from its last committed offset (from
//     where this member started it, when it committed nothing yet), after retry_backoff.
//     Completions of the aborted work that still arrive are ignored.
//   - Revocation: every record in flight (of every partition: the transaction spans them all)
//     is waited for and the transaction committed first (or aborted, with on_aborted); only
//     then does on_revoked run, so an owner that writes a checkpoint there writes one that
//     matches what was committed. Lost partitions: the transaction is aborted, on_aborted runs,
//     then on_revoked.
//   - Fatal (the producer was fenced by a newer instance with its transactional id, or its
//     state is unknown): every partition stays paused and fatal() answers true; the process
//     must replace the consumer and its producer.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kafka/client_handle.h"
#include "kafka/producer.h"
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

namespace detail {
struct CompletionInbox;  // consumer.cpp: where Completions post, drained by the consumer thread
enum class CompletionOutcome : uint8_t { done, abandoned, dropped };
}  // namespace detail

// The duty to report what became of one record handed to an asynchronous handler (see the
// top of this file). Move-only: exactly one owner holds it. Any thread, at any time (also
// after the Consumer is gone, when it does nothing); the first call counts, later ones are
// ignored. Destroying it uncalled counts as abandon().
class Completion {
public:
    Completion() = default;  // empty: calling it does nothing
    Completion(Completion&& other) noexcept = default;
    Completion& operator=(Completion&& other) noexcept;  // an uncalled record it held counts as abandoned
    Completion(const Completion&) = delete;
    Completion& operator=(const Completion&) = delete;
    ~Completion();

    // The work is finished: the record's offset may be stored.
    void done() const noexcept { finish(detail::CompletionOutcome::done); }
    // The record was not processed: whoever owns its partition next gets it (and what follows) again.
    void abandon() const noexcept { finish(detail::CompletionOutcome::abandoned); }
    // done() when `processed`, else abandon(): for callbacks that learn success as a bool
    // (a produce acknowledged or not).
    void settle(bool processed) const noexcept {
        finish(processed ? detail::CompletionOutcome::done : detail::CompletionOutcome::abandoned);
    }
    // Neither done() nor abandon() was called yet (false for an empty Completion).
    bool pending() const noexcept;

private:
    friend class Consumer;
    struct State;  // consumer.cpp
    explicit Completion(std::shared_ptr<State> state) : state_(std::move(state)) {}
    void finish(detail::CompletionOutcome outcome) const noexcept;

    std::shared_ptr<State> state_;
};

using RecordHandler = std::function<Disposition(const ConsumedRecord&)>;
using AsyncRecordHandler = std::function<void(const ConsumedRecord&, Completion)>;
using PartitionsHook = std::function<void(const std::vector<TopicPartition>&)>;

struct ConsumerOptions {
    std::string group_id;
    std::vector<std::string> topics;
    // Exactly one of the two: the synchronous handler, or the asynchronous one.
    RecordHandler handler;
    AsyncRecordHandler async_handler;
    PartitionsHook on_assigned;  // optional
    PartitionsHook on_revoked;   // optional
    // Synchronous retry, and asynchronous abandon while the partition stays here: how long the
    // partition waits before the record is handed out again.
    std::chrono::milliseconds retry_backoff{500};
    // Asynchronous mode: records handed out and neither done nor abandoned, at most (>= 1).
    std::size_t max_in_flight = 1000;
    // Transactional mode (see the top of this file): a transactional Producer whose
    // init_transactions() succeeded, used by this consumer only; it must outlive the consumer.
    Producer* transactional_producer = nullptr;
    std::chrono::milliseconds transaction_interval{100};
    PartitionsHook on_aborted;  // transactional mode: put the state of these partitions back
};

class Consumer {
public:
    // Subscribes and starts the consumer thread. Throws ConfigError on bad settings and
    // std::invalid_argument without group, topics or handler, with both handlers, or with
    // max_in_flight 0 in asynchronous mode. `metrics` must outlive it.
    Consumer(const KafkaSettings& settings, ConsumerOptions options, metrics::Registry& metrics);
    ~Consumer();  // stop()
    Consumer(const Consumer&) = delete;
    Consumer& operator=(const Consumer&) = delete;

    // Closes the consumer (see above) and joins its thread. Idempotent. Returns false when
    // the close did not complete within kafka.close_timeout (the handle is destroyed anyway);
    // the wait for records in flight is not part of that budget. Must not be called from a
    // handler or a hook.
    bool stop();

    // The partitions currently assigned to this member (snapshot).
    std::vector<TopicPartition> assignment() const;
    // For readiness: at least one partition assigned.
    bool has_assignment() const { return assigned_count_.load() > 0; }
    // Asynchronous mode: records handed out and neither done nor abandoned (as last seen by the
    // consumer thread); always 0 in synchronous mode.
    std::size_t in_flight() const { return in_flight_count_.load(); }

    bool brokers_down() const { return ctx_->all_brokers_down.load(); }
    bool fatal() const { return ctx_->fatal.load(); }

    // The member id the group coordinator gave this member ("" before its first JoinGroup
    // response and after the close). Any thread.
    std::string member_id() const;

private:
    using Clock = std::chrono::steady_clock;

    // Consumer thread only: what this member knows about one partition of its assignment.
    struct PartitionState {
        uint64_t generation = 0;  // unique per assignment of this partition to this member
        int64_t next = -1;        // offset after the last record handed out; -1 before the first
        std::set<int64_t> in_flight;  // asynchronous: handed out, neither done nor abandoned
        int64_t abandoned = -1;       // asynchronous: lowest abandoned offset not yet rewound, or -1
        int64_t stored = -1;          // asynchronous: last offset stored, or -1
        std::optional<Clock::time_point> resume_at;  // paused for a retry until then (rewound already)
        bool paused = false;                         // paused in librdkafka by this layer
        int64_t committed = -1;  // transactional: where the last commit left it (-1: not known yet)
    };

    static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                             void* opaque);
    // All consumer thread:
    void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
    void run();
    void handle(const rd_kafka_message_t* msg);        // synchronous mode
    void handle_async(const rd_kafka_message_t* msg);  // asynchronous mode
    void retry_later(const rd_kafka_message_t* msg);
    void resume_due();
    bool is_paused(const char* topic, int32_t partition) const;
    bool wants_pause(const PartitionState& p) const;
    void update_pauses();  // pauses / resumes every partition whose wants_pause() changed
    void pause(const std::vector<TopicPartition>& parts);
    void resume(const std::vector<TopicPartition>& parts);
    void seek(const std::vector<std::pair<TopicPartition, int64_t>>& positions, const char* why);
    void apply_completions();  // drains the inbox, stores offsets
    void store_offsets(const std::set<TopicPartition>& touched);
    void rewind_abandoned();  // partitions whose abandoned record can be handed out again
    void throttle();          // max_in_flight
    // Revoke (and transactions): waits for the records in flight, at most `budget` (default
    // kafka.close_timeout); false when some are still out.
    bool await_completions(const std::vector<TopicPartition>& parts, std::optional<Clock::duration> budget = {});
    void forget(const std::vector<TopicPartition>& parts);  // unpaused, dropped from parts_
    void add_in_flight(long delta);
    void commit_sync(const char* why);
    // Transactional mode: drains, then commits (or aborts and rolls back); false when aborted.
    // `patient`: the drain may take kafka.message_timeout + close_timeout (the interval's
    // commit), else close_timeout (rebalance, close).
    bool end_transaction(const char* why, bool abort, bool patient);
    void roll_back(const char* why);  // after an abort: on_aborted, every partition rewound
    void begin_transaction();
    std::chrono::milliseconds abort_grace() const;
    std::vector<TopicPartition> all_partitions() const;
    bool close_handle();
    void await_first_assignment();  // before close_handle(): see consumer.cpp
    std::string handle_member_id() const;  // member_id() without stop_mu_: the consumer thread's
    void call_hook(const PartitionsHook& hook, const std::vector<TopicPartition>& parts, const char* name);
    void set_assignment(std::vector<TopicPartition> parts);

    KafkaSettings settings_;
    ConsumerOptions options_;
    bool async_ = false;
    Producer* txn_ = nullptr;  // transactional mode
    bool txn_open_ = false;        // consumer thread: a transaction is begun
    bool txn_dirty_ = false;       // consumer thread: records handed out since the last commit
    bool txn_must_abort_ = false;  // consumer thread: a record was abandoned
    bool txn_broken_ = false;      // consumer thread: fatal; nothing is handed out any more
    Clock::time_point txn_due_{};  // consumer thread: the next commit
    // Outlives rk_. On the heap so that a handle librdkafka cannot destroy safely (see
    // await_first_assignment in consumer.cpp) can be left to the process's exit with it.
    std::shared_ptr<detail::ClientContext> ctx_ = std::make_shared<detail::ClientContext>();
    detail::HandlePtr rk_;
    std::shared_ptr<detail::CompletionInbox> inbox_;  // shared with every Completion handed out

    metrics::Counter* consumed_;
    metrics::Counter* retried_;
    metrics::Counter* abandoned_;
    metrics::Counter* rebalances_;
    metrics::Gauge* in_flight_gauge_;  // summed over the members of a group in one registry

    std::atomic<bool> stop_{false};
    std::atomic<bool> closed_ok_{true};
    mutable std::mutex stop_mu_;  // serialises stop() callers; member_id() reads the handle under it

    // Consumer thread only:
    std::map<TopicPartition, PartitionState> parts_;  // the assignment
    bool assigned_once_ = false;  // a first assignment (maybe empty) came from the group
    std::atomic<bool> destroy_unsafe_{false};  // closed without one: rd_kafka_destroy would abort
    uint64_t generations_ = 0;
    std::size_t in_flight_ = 0;  // sum of parts_[*].in_flight sizes
    std::size_t paused_count_ = 0;
    bool throttled_ = false;       // at max_in_flight: everything paused
    bool pauses_changed_ = false;  // update_pauses() has work
    std::vector<TopicPartition> to_rewind_;  // abandoned, nothing of theirs in flight any more
    bool drop_logged_ = false;
    Clock::duration revoke_waits_{};  // spent waiting for records in flight: extends the close's budget

    std::atomic<std::size_t> in_flight_count_{0};  // in_flight_, readable anywhere

    mutable std::mutex assignment_mu_;
    std::vector<TopicPartition> assignment_;  // guarded by assignment_mu_, sorted
    std::atomic<size_t> assigned_count_{0};

    std::thread thread_;
};

}  // namespace omnibus::kafka
