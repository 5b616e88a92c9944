// Single-partition log reader: explicit assignment, no group, batches in offset order.
#include "kafka/log_reader.h"

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>

#include "kafka/client_config.h"
#include "log/log.h"

namespace omnibus::kafka {
namespace {

constexpr log::Logger logger{"kafka"};
using Clock = std::chrono::steady_clock;

// The same error code is logged again only after this long (a missing topic is reported on
// every metadata refresh).
constexpr auto kErrorLogInterval = std::chrono::seconds(30);

// Upper bound of the metadata / log start request before the partition is assigned (assign()).
constexpr auto kWarmUpTimeout = std::chrono::milliseconds(1000);

struct TopicDeleter {
    void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

// Consumer properties without the group parts that matter: the handle never joins or commits.
Properties reader_properties(const KafkaSettings& s) {
    Properties p = consumer_properties(s, s.group_id + ".log-reader");
    p["enable.auto.commit"] = Secret("false");
    p["auto.offset.reset"] = Secret("error");  // a start offset not on the log: on_gap, by the layer
    p["enable.partition.eof"] = Secret("true");
    p["isolation.level"] = Secret("read_committed");
    // With kafka.embedded, fetch.wait.max.ms is 20 ms (consumer_properties): the mock's tail latency.
    return p;
}

LogRecord to_log_record(const rd_kafka_message_t* msg) {
    LogRecord r;
    r.record.topic = rd_kafka_topic_name(msg->rkt);
    if (msg->key) r.record.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    if (msg->payload) r.record.value.assign(static_cast<const char*>(msg->payload), msg->len);
    r.tombstone = msg->payload == nullptr;
    r.record.tombstone = r.tombstone;
    rd_kafka_headers_t* hdrs = nullptr;  // owned by the message
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        r.record.headers.reserve(rd_kafka_header_cnt(hdrs));
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
            r.record.headers.push_back({name, value ? std::string(static_cast<const char*>(value), size) : std::string()});
    }
    r.offset = msg->offset;
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(msg, &type);
    r.timestamp_ms = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
    return r;
}

}  // namespace

LogReader::LogReader(const KafkaSettings& settings, metrics::Registry& metrics, LogReaderOptions options)
    : settings_(settings), options_(std::move(options)), position_(options_.start_offset) {
    if (options_.topic.empty()) throw std::invalid_argument("kafka log reader: topic is required");
    if (!options_.on_records) throw std::invalid_argument("kafka log reader: on_records is required");
    if (options_.partition < 0) throw std::invalid_argument("kafka log reader: partition must not be negative");
    if (options_.start_offset < 0 && options_.start_offset != kBeginning)
        throw std::invalid_argument("kafka log reader: start_offset must be an offset or kBeginning");
    if (options_.max_batch == 0) throw std::invalid_argument("kafka log reader: max_batch must be at least 1");

    metrics::Labels labels{{"topic", options_.topic}, {"partition", std::to_string(options_.partition)}};
    records_ = &metrics.counter("omnibus_kafka_log_reader_records_total", "Records a log reader handed to its owner",
                                labels);
    gaps_ = &metrics.counter("omnibus_kafka_log_reader_gaps_total",
                             "Offsets a log reader wanted that were not on the log (it went on from the log start)",
                             labels);
    handler_errors_ = &metrics.counter("omnibus_kafka_log_reader_handler_errors_total",
                                       "Log reader handlers that threw (the reader stops handing out records)", labels);
    position_gauge_ = &metrics.gauge("omnibus_kafka_log_reader_position",
                                     "The offset after the last record a log reader handed out", labels);
    if (options_.start_offset >= 0) position_gauge_->set(static_cast<double>(options_.start_offset));

    ctx_.role = "log-reader";
    ctx_.owner = this;
    Properties props = reader_properties(settings_);
    ctx_.secrets = detail::secret_values(props);
    rk_ = detail::new_handle(RD_KAFKA_CONSUMER, detail::make_conf(props), ctx_);
    if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(rk_.get()))
        throw std::runtime_error("kafka log reader: " + std::string(rd_kafka_err2str(err)));

    thread_ = std::thread(&LogReader::run, this);  // assigns the partition
    logger.info("log reader started", {{"client", rd_kafka_name(rk_.get())},
                                       {"topic", options_.topic},
                                       {"partition", options_.partition},
                                       {"start_offset", static_cast<long long>(options_.start_offset)},
                                       {"brokers", settings_.brokers}});
}

LogReader::~LogReader() { stop(); }

bool LogReader::stop() {
    if (std::this_thread::get_id() == reader_id_.load()) {
        stop_.store(true);  // the loop ends after this handler; whoever stops next joins
        return false;
    }
    std::lock_guard lock(stop_mu_);
    if (!thread_.joinable()) return closed_ok_.load();
    auto deadline = Clock::now() + settings_.close_timeout;
    stop_.store(true);
    {
        std::lock_guard state(mu_);
        stopping_ = true;
    }
    cv_.notify_all();  // wait_caught_up() callers give up
    {
        detail::QueuePtr q(rd_kafka_queue_get_consumer(rk_.get()));
        if (q) rd_kafka_queue_yield(q.get());  // cut the current consumer_poll short
    }
    thread_.join();
    {
        std::lock_guard q(query_mu_);
        query_.reset();  // destroyed here, or by the last wait_caught_up() still asking
        query_closed_ = true;
    }
    closed_ok_.store(close_handle(deadline));
    if (closed_ok_.load()) {
        rk_.reset();
    } else {
        // The close did not finish in time: do not let rd_kafka_destroy block on it again.
        rd_kafka_destroy_flags(rk_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    logger.info("log reader stopped", {{"topic", options_.topic},
                                       {"partition", options_.partition},
                                       {"position", static_cast<long long>(position())},
                                       {"clean", closed_ok_.load()}});
    return closed_ok_.load();
}

bool LogReader::close_handle(Clock::time_point deadline) {
    // No group to leave: the close only stops the fetcher. Bounded all the same.
    detail::QueuePtr q(rd_kafka_queue_new(rk_.get()));
    if (detail::ErrorPtr e{rd_kafka_consumer_close_queue(rk_.get(), q.get())}) {
        logger.error("log reader close failed", {{"topic", options_.topic}, {"error", rd_kafka_error_string(e.get())}});
        return false;
    }
    while (!rd_kafka_consumer_closed(rk_.get())) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            logger.warn("log reader close timed out", {{"topic", options_.topic}});
            return false;
        }
        detail::EventPtr ev(rd_kafka_queue_poll(q.get(), static_cast<int>(std::min<long long>(left, 100))));
    }
    return true;
}

void LogReader::assign(int64_t offset) {
    // A fresh handle connects lazily: assigned before it knows the partition's leader, it may
    // find it only at its 1 s topic scan, and resolves kBeginning only after a 500 ms retry
    // timer. Both requests below wait for the connection and the leader (bounded; without an
    // answer in time the assignment still works, only later). No fetch is in flight now, so
    // they are not queued behind one.
    const int timeout =
        static_cast<int>(std::min<std::chrono::milliseconds>(settings_.admin_timeout, kWarmUpTimeout).count());
    if (offset == kBeginning) {
        seeking_start_ = true;
        int64_t low = 0, high = 0;
        if (rd_kafka_query_watermark_offsets(rk_.get(), options_.topic.c_str(), options_.partition, &low, &high,
                                             timeout) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            offset = low;
            std::lock_guard lock(mu_);
            position_.store(low, std::memory_order_release);
        }
    } else {
        TopicPtr rkt(rd_kafka_topic_new(rk_.get(), options_.topic.c_str(), nullptr));  // "locally known"
        const rd_kafka_metadata_t* raw = nullptr;
        if (rkt) (void)rd_kafka_metadata(rk_.get(), 0, rkt.get(), &raw, timeout);
        detail::MetadataPtr md(raw);
    }
    detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), options_.partition)->offset = offset;
    // Only local errors come back here (no group, bad arguments): nothing to retry.
    if (rd_kafka_resp_err_t err = rd_kafka_assign(rk_.get(), list.get()))
        halt("assign", offset, 0, rd_kafka_err2str(err));
}

void LogReader::run() {
    pthread_setname_np(pthread_self(), "kafka-log");
    reader_id_.store(std::this_thread::get_id());
    assign(options_.start_offset);
    std::vector<detail::MessagePtr> msgs;
    std::vector<LogRecord> batch;
    msgs.reserve(options_.max_batch);
    batch.reserve(options_.max_batch);
    while (!stop_.load()) {
        detail::MessagePtr first(rd_kafka_consumer_poll(rk_.get(), 100));
        if (!first) continue;
        // What else is ready now, without waiting: one batch.
        msgs.clear();
        msgs.push_back(std::move(first));
        while (msgs.size() < options_.max_batch) {
            detail::MessagePtr next(rd_kafka_consumer_poll(rk_.get(), 0));
            if (!next) break;
            msgs.push_back(std::move(next));
        }
        if (failed_.load()) continue;  // paused; what was fetched before is dropped
        batch.clear();
        for (const auto& m : msgs) {
            if (stop_.load()) break;  // stop() from a handler: nothing more is handed out
            const rd_kafka_message_t* msg = m.get();
            if (msg->err) {
                hand_out(batch);  // everything before the event first
                if (failed_.load()) break;
                on_event(msg);
                if (failed_.load()) break;
                continue;
            }
            if (msg->partition != options_.partition || options_.topic != rd_kafka_topic_name(msg->rkt)) continue;
            if (gap_pending_) {
                hand_out(batch);
                if (failed_.load()) break;
                report_gap(msg->offset);
                if (failed_.load()) break;
            }
            // Belt to librdkafka's braces: never hand out an offset twice, or backwards.
            // (confirmed_ and gap_pending_ are written by this thread only.)
            if (!batch.empty() ? msg->offset <= batch.back().offset : confirmed_ && msg->offset < position()) continue;
            batch.push_back(to_log_record(msg));
        }
        if (!failed_.load() && !stop_.load()) hand_out(batch);
    }
}

void LogReader::hand_out(std::vector<LogRecord>& batch) {
    if (batch.empty()) return;
    const int64_t first = batch.front().offset;
    const int64_t next = batch.back().offset + 1;
    const std::size_t count = batch.size();
    try {
        options_.on_records(batch);
    } catch (const std::exception& e) {
        halt("on_records", first, count, e.what());
        batch.clear();
        return;
    } catch (...) {
        halt("on_records", first, count, "unknown exception");
        batch.clear();
        return;
    }
    batch.clear();
    seeking_start_ = false;
    records_->inc(count);
    position_gauge_->set(static_cast<double>(next));
    {
        std::lock_guard lock(mu_);
        position_.store(next, std::memory_order_release);
        confirmed_ = true;
    }
    cv_.notify_all();
}

void LogReader::on_event(const rd_kafka_message_t* msg) {
    const bool ours =
        msg->rkt && msg->partition == options_.partition && options_.topic == rd_kafka_topic_name(msg->rkt);
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!ours) return;
        // The log's end: nothing to hand out below it (past transaction markers too).
        if (gap_pending_) {
            report_gap(msg->offset);
            if (failed_.load()) return;
        }
        seeking_start_ = false;
        {
            std::lock_guard lock(mu_);
            if (!confirmed_ || msg->offset > position_.load()) position_.store(msg->offset, std::memory_order_release);
            confirmed_ = true;
        }
        position_gauge_->set(static_cast<double>(position()));
        cv_.notify_all();
        return;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && ours) {
        // The offset fetched is not on the log (auto.offset.reset=error). The fetcher has stopped:
        // a seek is refused in that state (_STATE), a new assignment starts it again.
        restart_at_log_start(msg->offset >= 0 ? msg->offset : position());
        return;
    }
    log_error(msg->err, detail::redact(rd_kafka_message_errstr(msg), ctx_.secrets));
}

void LogReader::restart_at_log_start(int64_t requested) {
    if (seeking_start_) {
        // The log start moved on (retention) between its lookup and the fetch: nothing the
        // owner asked for is gone. Look it up again.
        assign(kBeginning);
        return;
    }
    if (!gap_pending_) gap_requested_ = requested;  // a second reset while restarting: still the first offset
    {
        std::lock_guard lock(mu_);
        gap_pending_ = true;
        confirmed_ = false;
        position_.store(kBeginning, std::memory_order_release);
    }
    logger.warn("log reader offset is not on the log; restarting at the log start",
                {{"topic", options_.topic}, {"partition", options_.partition},
                 {"requested", static_cast<long long>(gap_requested_)}});
    assign(kBeginning);
}

void LogReader::report_gap(int64_t log_start) {
    const int64_t requested = gap_requested_;
    {
        std::lock_guard lock(mu_);
        gap_pending_ = false;
    }
    gap_requested_ = -1;
    gaps_->inc();
    logger.warn("log reader continues from the log start: records were skipped or are read again",
                {{"topic", options_.topic}, {"partition", options_.partition},
                 {"requested", static_cast<long long>(requested)}, {"log_start", static_cast<long long>(log_start)}});
    if (!options_.on_gap) return;
    try {
        options_.on_gap(requested, log_start);
    } catch (const std::exception& e) {
        halt("on_gap", log_start, 0, e.what());
    } catch (...) {
        halt("on_gap", log_start, 0, "unknown exception");
    }
}

void LogReader::halt(const char* what, int64_t offset, std::size_t count, const char* error) {
    handler_errors_->inc();
    logger.error("log reader stops handing out records: the owner's state may miss them",
                 {{"topic", options_.topic}, {"partition", options_.partition}, {"in", what},
                  {"offset", static_cast<long long>(offset)}, {"records", count}, {"error", error}});
    {
        std::lock_guard lock(mu_);
        failed_.store(true);
    }
    cv_.notify_all();
    // Stop fetching: what would come is dropped anyway.
    detail::PartitionListPtr list = detail::to_list({{options_.topic, options_.partition}});
    if (rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk_.get(), list.get()))
        logger.warn("log reader cannot pause its partition",
                    {{"topic", options_.topic}, {"error", rd_kafka_err2str(err)}});
}

void LogReader::log_error(rd_kafka_resp_err_t err, const std::string& reason) {
    auto now = Clock::now();
    if (err == last_error_ && now - last_error_at_ < kErrorLogInterval) return;
    last_error_ = err;
    last_error_at_ = now;
    logger.warn("log reader error", {{"topic", options_.topic},
                                     {"partition", options_.partition},
                                     {"error", rd_kafka_err2name(err)},
                                     {"reason", reason}});
}

bool LogReader::caught_up(int64_t low, int64_t high) const {
    if (gap_pending_) return false;  // on_gap first: the owner may reset its state there
    const int64_t pos = position_.load();
    if (confirmed_) return pos >= high;
    // Nothing fetched yet: caught up when the log holds nothing at or after the start offset
    // (a start offset beyond the end is a gap, not caught up).
    const int64_t start = pos == kBeginning ? low : pos;
    return start >= low && start == high;
}

std::shared_ptr<LogReader::QueryClient> LogReader::query_client() {
    std::lock_guard lock(query_mu_);
    if (query_closed_) return nullptr;
    if (query_) return query_;
    auto q = std::make_shared<QueryClient>();
    q->ctx.role = "log-reader-query";
    Properties props = admin_properties(settings_);
    props["isolation.level"] = Secret("read_committed");  // the end offset as the reader sees it
    q->ctx.secrets = detail::secret_values(props);
    q->rk = detail::new_handle(RD_KAFKA_CONSUMER, detail::make_conf(props), q->ctx);
    query_ = q;
    return q;
}

bool LogReader::wait_caught_up(std::chrono::milliseconds timeout) {
    if (std::this_thread::get_id() == reader_id_.load()) {
        logger.error("wait_caught_up called on the log reader's thread: it cannot catch up there",
                     {{"topic", options_.topic}, {"partition", options_.partition}});
        return false;
    }
    const auto deadline = Clock::now() + timeout;
    if (failed_.load()) return false;
    std::shared_ptr<QueryClient> q;
    try {
        q = query_client();
    } catch (const std::exception& e) {
        logger.error("log reader cannot create its end-offset client",
                     {{"topic", options_.topic}, {"error", e.what()}});
        return false;
    }
    if (!q) return false;  // stopped

    int64_t low = 0, high = 0;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        q->rk.get(), options_.topic.c_str(), options_.partition, &low, &high,
        static_cast<int>(std::clamp<long long>(left, 1, std::numeric_limits<int>::max())));
    q.reset();  // stop() may be waiting to drop it
    if (err) {
        logger.warn("log reader cannot read the log's end offset",
                    {{"topic", options_.topic}, {"partition", options_.partition}, {"error", rd_kafka_err2name(err)}});
        return false;
    }
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return stopping_ || failed_.load() || caught_up(low, high); });
    return !failed_.load() && caught_up(low, high);
}

}  // namespace omnibus::kafka
