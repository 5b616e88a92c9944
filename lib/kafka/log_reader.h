// LogReader: reads one partition of a topic from an offset the owner chose, in order, and
// hands every record to the owner once — for state rebuilt from a log (the identity log),
// where the owner stores the offset it reached together with its state.
//
// Threads and ownership:
//   - One reader thread per LogReader (started by the constructor) owns the rd_kafka_t's
//     polling and runs on_records and on_gap: they never run concurrently with each other.
//   - position(), failed(), wait_caught_up() and stop() may be called from any thread;
//     wait_caught_up() and stop() not from on_records / on_gap (the reader thread: they could
//     never finish there; wait_caught_up() returns false, stop() only asks the thread to end:
//     nothing more is handed out, and a later stop() from elsewhere, or the destructor, joins).
//   - wait_caught_up() reads the log's end on a second, lazily created handle of its own: a
//     ListOffsets request on the reader's connection would queue behind its Fetch long-poll
//     (up to fetch.wait.max.ms; a broker serves one request per connection at a time).
//
// No consumer group: the partition is assigned with an explicit offset (rd_kafka_assign).
// Nothing is committed and no group is joined; librdkafka 2.0.2 still needs a group.id for
// the assign API, so the handle carries "<kafka.group_id>.log-reader" (it looks up that
// group's coordinator and nothing else; with ACLs the principal may need Describe on it, else
// librdkafka logs coordinator errors, which do not affect reading).
//
// Guarantees:
//   - on_records gets batches (whatever one poll has ready, at most max_batch records) in
//     strictly increasing offset order, each record once per LogReader. Offsets may skip
//     (compaction, transaction markers, aborted records: isolation.level=read_committed).
//   - A record whose value was null arrives with tombstone = true (record.value "",
//     record.tombstone set too); a null key arrives as "". An empty value is not null:
//     librdkafka 2.0.2 keeps the two apart on the wire (kcat -Z prints both as NULL, but its
//     %S gives 0 and -1).
//   - position() is the offset after the last record handed out (on_records returned).
//     Before the first record it is the start offset (kBeginning given: until the log start
//     was looked up; also while restarting after a gap); the end of the log, once reached,
//     also moves it (past transaction markers).
//   - The start offset not on the log — below the log start (deleted by retention) or beyond
//     its end (the log was recreated or truncated) — and, later, the position falling below
//     the log start (retention overtook a slow reader): on_gap(requested, log_start) runs on
//     the reader thread, then reading continues from the log start. log_start is the offset
//     of the first record handed out after the gap (or the log's end when it is empty), and
//     on_gap runs right before that record's batch. Offsets handed out before a gap beyond
//     the end may come again after it: they are other records now (on_gap said so).
//   - on_records (or on_gap) throws: logged, and the reader stops handing out records for
//     good (it never skips: the owner's state would silently miss the batch). position()
//     stays at the first record of that batch, failed() turns true, wait_caught_up() returns
//     false; the owner recovers by stopping this reader and starting a new one from the
//     offset its state holds. Counted in omnibus_kafka_log_reader_handler_errors_total.
//   - Everything is bounded: stop() by kafka.close_timeout (plus the on_records call running
//     at the time), wait_caught_up() by its timeout.
//
// Settings: kafka.client applies as for a Consumer (reserved names rejected), except
// auto.offset.reset (always error: the layer handles it, see on_gap), enable.partition.eof
// (always true), isolation.level (always read_committed) and enable.auto.commit (false). With
// kafka.embedded, fetch.wait.max.ms defaults to 20 ms unless kafka.client sets it: the mock
// answers a Fetch only when that wait is over, even when records arrive meanwhile.
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kafka/client_handle.h"
#include "kafka/record.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"

namespace omnibus::kafka {

struct LogRecord {
    Record record;  // topic, key, value, headers; a null key or value arrives as ""
    int64_t offset = 0;
    int64_t timestamp_ms = -1;  // record timestamp (producer's create time), -1 if none
    bool tombstone = false;     // the value was null (record.value is "")
};

struct LogReaderOptions {
    std::string topic;
    int32_t partition = 0;
    // The first offset wanted (the one the owner's state stops before), or LogReader::kBeginning.
    int64_t start_offset = 0;
    // Reader thread, batches in offset order. The records may be moved out of the vector.
    std::function<void(std::vector<LogRecord>&)> on_records;
    // Optional. Reader thread: `requested` is not on the log; reading continues at `log_start`.
    std::function<void(int64_t requested, int64_t log_start)> on_gap;
    // Records per on_records call, at most (>= 1).
    std::size_t max_batch = 500;
};

class LogReader {
public:
    // start_offset: the log's first record, wherever it is.
    static constexpr int64_t kBeginning = RD_KAFKA_OFFSET_BEGINNING;

    // Starts the reader thread, which assigns the partition. Throws ConfigError on bad settings,
    // std::invalid_argument without topic or on_records, with a negative partition, a negative
    // start offset other than kBeginning or max_batch 0. `metrics` must outlive it.
    LogReader(const KafkaSettings& settings, metrics::Registry& metrics, LogReaderOptions options);
    ~LogReader();  // stop()
    LogReader(const LogReader&) = delete;
    LogReader& operator=(const LogReader&) = delete;

    // Lets the running on_records finish, joins the reader thread and closes the handle,
    // bounded by kafka.close_timeout (plus that call). Idempotent. Returns false when the close
    // did not finish in time (the handle is destroyed anyway). From the reader thread it only
    // asks the thread to end and returns false: a later stop() (or the destructor) elsewhere joins.
    bool stop();

    // The offset after the last record handed out (see the top of this file). Any thread.
    int64_t position() const { return position_.load(std::memory_order_acquire); }

    // on_records or on_gap threw: no more records are handed out (see the top of this file).
    bool failed() const { return failed_.load(); }

    // Waits until every record on the partition when called (up to its end offset, read from
    // the broker) has been handed to on_records and on_records returned. True if so within
    // `timeout`; false on timeout, when the end offset cannot be read in time, after a handler
    // threw, after stop(), and on the reader thread.
    bool wait_caught_up(std::chrono::milliseconds timeout);

private:
    using Clock = std::chrono::steady_clock;

    // The handle wait_caught_up() asks for the log's end; shared with the callers using it,
    // so stop() can drop it while one of them still waits for an answer.
    struct QueryClient {
        detail::ClientContext ctx;  // outlives rk
        detail::HandlePtr rk;
    };

    void run();
    void assign(int64_t offset);                          // reader thread
    void hand_out(std::vector<LogRecord>& batch);          // reader thread
    void on_event(const rd_kafka_message_t* msg);         // reader thread: errors, EOF, gaps
    void restart_at_log_start(int64_t requested);         // reader thread
    void report_gap(int64_t log_start);                   // reader thread
    void halt(const char* what, int64_t offset, std::size_t count, const char* error);
    void log_error(rd_kafka_resp_err_t err, const std::string& reason);
    bool caught_up(int64_t low, int64_t high) const;  // mu_ held
    std::shared_ptr<QueryClient> query_client();
    bool close_handle(Clock::time_point deadline);

    KafkaSettings settings_;
    LogReaderOptions options_;
    detail::ClientContext ctx_;  // outlives rk_
    detail::HandlePtr rk_;

    metrics::Counter* records_;
    metrics::Counter* gaps_;
    metrics::Counter* handler_errors_;
    metrics::Gauge* position_gauge_;

    std::atomic<bool> stop_{false};
    std::atomic<bool> failed_{false};
    std::atomic<bool> closed_ok_{true};
    std::atomic<std::thread::id> reader_id_{};
    std::mutex stop_mu_;  // serialises stop() callers

    // What wait_caught_up() waits for; written by the reader thread under mu_.
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::atomic<int64_t> position_;  // written under mu_, read anywhere
    bool confirmed_ = false;    // position_ came from the broker (a record or the log's end)
    bool gap_pending_ = false;  // restarted at the log start, on_gap not called yet
    bool stopping_ = false;

    // Reader thread only:
    int64_t gap_requested_ = -1;  // the offset that was not on the log, while gap_pending_
    bool seeking_start_ = false;  // assigned at kBeginning, nothing arrived since: a reset is no gap
    rd_kafka_resp_err_t last_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
    Clock::time_point last_error_at_{};

    std::mutex query_mu_;
    std::shared_ptr<QueryClient> query_;  // guarded by query_mu_; created on first use
    bool query_closed_ = false;           // guarded by query_mu_: stop() ran

    std::thread thread_;
};

}  // namespace omnibus::kafka
