// Idempotent asynchronous producer with one delivery callback per record (see producer.h).
#include "kafka/producer.h"

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "kafka/client_config.h"
#include "log/log.h"

namespace omnibus::kafka {
namespace {

constexpr log::Logger logger{"kafka"};
using Clock = std::chrono::steady_clock;
// How often the poll thread serves what is left while another thread serves reports.
constexpr auto kSafetyNet = std::chrono::milliseconds(20);

}  // namespace

// One produce() call in flight: owned by librdkafka (as the message opaque) between a
// successful produceva and the delivery report, otherwise by the local-failure queue.
// librdkafka reads key and value straight out of `rec`, so it must not move meanwhile.
struct Producer::Pending {
    Record rec;
    DeliveryCallback cb;
    Clock::time_point enqueued;
};

Producer::Producer(const KafkaSettings& settings, metrics::Registry& metrics, metrics::Labels labels,
                   std::string transactional_id)
    : settings_(settings),
      metrics_(metrics),
      transactional_id_(std::move(transactional_id)),
      queue_depth_(std::make_shared<QueueDepth>()) {
    ctx_.role = "producer";
    ctx_.owner = this;
    if (transactional()) {
        txn_committed_ = &metrics_.counter("omnibus_kafka_transactions_total", "Kafka transactions ended, by outcome",
                                           {{"outcome", "committed"}});
        txn_aborted_ = &metrics_.counter("omnibus_kafka_transactions_total", "Kafka transactions ended, by outcome",
                                         {{"outcome", "aborted"}});
    }
    Properties props = producer_properties(settings_, transactional_id_);
    ctx_.secrets = detail::secret_values(props);
    detail::ConfPtr conf = detail::make_conf(props);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &Producer::on_delivery);
    rk_ = detail::new_handle(RD_KAFKA_PRODUCER, std::move(conf), ctx_);

    queue_depth_->rk = rk_.get();
    metrics_.gauge_fn("omnibus_kafka_producer_queue_depth", "Records queued in or in flight from the producer", labels,
                      [qd = queue_depth_] {
                          std::lock_guard lock(qd->mu);
                          return qd->rk ? static_cast<double>(rd_kafka_outq_len(qd->rk)) : 0.0;
                      });
    main_queue_.reset(rd_kafka_queue_get_main(rk_.get()));
    gate_ = std::make_shared<ServeGate>();
    gate_->producer = this;
    poll_thread_ = std::thread(&Producer::poll_loop, this);
    logger.info("producer started", {{"client", rd_kafka_name(rk_.get())}, {"brokers", settings_.brokers}});
}

Producer::~Producer() {
    if (in_transaction_.load()) {
        // Left open by its owner (a commit is the owner's job): nothing of it becomes visible.
        TxnResult r = abort_transaction(settings_.close_timeout, "open when the producer closed",
                                        std::chrono::milliseconds(0));
        if (r.outcome != TxnOutcome::aborted)
            logger.warn("producer closing: open transaction not aborted", {{"error", r.error}});
    }
    serve_deliveries_on_own_thread();
    {
        std::lock_guard lock(gate_->mu);  // waits for a posted serve that is running
        gate_->producer = nullptr;
    }
    closing_.store(true);
    size_t left = flush(settings_.close_timeout);
    if (left > 0) {
        logger.warn("producer closing with undelivered records; purging them",
                    {{"records", left}, {"close_timeout_ms", static_cast<long long>(settings_.close_timeout.count())}});
        rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        flush(std::chrono::milliseconds(2000));
    }
    stop_.store(true);
    rd_kafka_queue_yield(main_queue_.get());
    {
        std::lock_guard lock(mode_mu_);
        mode_cv_.notify_all();
    }
    poll_thread_.join();
    // The poll thread is gone: this thread now owns the delivery path. Serve whatever the
    // purge still has to report so that no callback is lost.
    auto deadline = Clock::now() + std::chrono::seconds(2);
    while (in_flight_.load() > 0 && Clock::now() < deadline) {
        rd_kafka_poll(rk_.get(), 50);
        drain_local_failures();
    }
    if (size_t lost = in_flight_.load(); lost > 0)
        logger.error("producer destroyed before every delivery callback ran", {{"records", lost}});
    {
        std::lock_guard lock(queue_depth_->mu);
        queue_depth_->rk = nullptr;
    }
    main_queue_.reset();
    rk_.reset();
}

void Producer::produce(Record rec, DeliveryCallback cb) {
    auto* p = new Pending{std::move(rec), std::move(cb), Clock::now()};
    in_flight_.fetch_add(1, std::memory_order_acq_rel);
    if (closing_.load()) {
        fail_locally(p, RD_KAFKA_RESP_ERR__DESTROY, p->rec.topic);
        return;
    }
    Record& r = p->rec;
    detail::HeadersPtr headers;
    if (!r.headers.empty()) {
        headers.reset(rd_kafka_headers_new(r.headers.size()));
        for (const auto& h : r.headers)
            rd_kafka_header_add(headers.get(), h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                                static_cast<ssize_t>(h.value.size()));
    }
    rd_kafka_vu_t vu[7];
    size_t n = 0;
    vu[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[n++].u.cstr = r.topic.c_str();
    if (r.partition >= 0) {
        vu[n].vtype = RD_KAFKA_VTYPE_PARTITION;
        vu[n++].u.i32 = r.partition;
    }
    if (!r.key.empty()) {
        vu[n].vtype = RD_KAFKA_VTYPE_KEY;
        vu[n].u.mem.ptr = r.key.data();
        vu[n++].u.mem.size = r.key.size();
    }
    vu[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[n].u.mem.ptr = r.tombstone ? nullptr : r.value.data();
    vu[n++].u.mem.size = r.tombstone ? 0 : r.value.size();
    vu[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[n++].u.i = 0;  // no copy, no free: `p` keeps key and value alive until the report
    vu[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[n++].u.ptr = p;
    if (headers) {
        vu[n].vtype = RD_KAFKA_VTYPE_HEADERS;
        vu[n++].u.headers = headers.get();
    }
    detail::ErrorPtr error(rd_kafka_produceva(rk_.get(), vu, n));
    if (error) {
        fail_locally(p, rd_kafka_error_code(error.get()), r.topic);  // headers freed by `headers`
        return;
    }
    (void)headers.release();  // owned by the message now
}

bool Producer::warm_up(const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
    struct TopicDeleter {
        void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
    };
    std::vector<std::unique_ptr<rd_kafka_topic_t, TopicDeleter>> handles;  // make the topics "locally known"
    for (const auto& t : topics) handles.emplace_back(rd_kafka_topic_new(rk_.get(), t.c_str(), nullptr));
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, nullptr, &raw, static_cast<int>(timeout.count()));
    detail::MetadataPtr md(raw);
    if (err) {
        logger.warn("producer warm-up: no metadata", {{"error", rd_kafka_err2str(err)}});
        return false;
    }
    return true;
}

namespace {

int ms_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, std::numeric_limits<int>::max()));
}

// A transaction call's error, classified: retry it (until `retry_until`), abort the
// transaction, or give up.
enum class TxnAction { retry, abort, fatal };
TxnAction classify(const rd_kafka_error_t* e, Clock::time_point retry_until) {
    if (rd_kafka_error_is_fatal(e)) return TxnAction::fatal;
    if (rd_kafka_error_txn_requires_abort(e)) return TxnAction::abort;
    if (rd_kafka_error_is_retriable(e) && Clock::now() < retry_until) return TxnAction::retry;
    return TxnAction::abort;  // out of time, or anything else: what is uncertain is aborted
}

}  // namespace

std::string Producer::init_transactions(std::chrono::milliseconds timeout, rd_kafka_resp_err_t* code) {
    if (code) *code = RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (!transactional()) return "not a transactional producer";
    std::lock_guard txn(txn_mu_);
    detail::ErrorPtr e(rd_kafka_init_transactions(rk_.get(), static_cast<int>(timeout.count())));
    if (code) *code = e ? rd_kafka_error_code(e.get()) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!e) {
        logger.info("transactional producer ready", {{"client", rd_kafka_name(rk_.get())}});
        return {};
    }
    return rd_kafka_error_string(e.get());
}

std::string Producer::begin_transaction() {
    std::lock_guard txn(txn_mu_);
    detail::ErrorPtr e(rd_kafka_begin_transaction(rk_.get()));
    if (e) return rd_kafka_error_string(e.get());
    in_transaction_.store(true);
    return {};
}

TxnResult Producer::commit_transaction(const std::vector<std::pair<TopicPartition, int64_t>>& offsets,
                                       const rd_kafka_consumer_group_metadata_t* group,
                                       std::chrono::milliseconds timeout, std::chrono::milliseconds abort_grace) {
    std::lock_guard txn(txn_mu_);
    const auto deadline = Clock::now() + timeout;
    if (!in_transaction_.load()) return {TxnOutcome::aborted, "no transaction in progress"};
    // The records' callbacks run on the serving thread, not inside librdkafka's commit.
    if (size_t left = flush(std::chrono::milliseconds(ms_left(deadline))); left > 0)
        return abort_locked(deadline, std::to_string(left) + " records of the transaction unacknowledged",
                            abort_grace);
    std::unique_lock serve(serve_mu_, std::defer_lock);
    // Calls `call` until it succeeds (nullopt), retrying what librdkafka calls retriable until
    // `retry_until`; otherwise the transaction's end. The abort takes serve_mu_ itself.
    auto attempt = [&](auto&& call, const char* what, Clock::time_point retry_until) -> std::optional<TxnResult> {
        for (;;) {
            detail::ErrorPtr e(call());
            if (!e) return std::nullopt;
            std::string why = std::string(what) + ": " + rd_kafka_error_string(e.get());
            switch (classify(e.get(), retry_until)) {
                case TxnAction::retry:
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                    continue;
                case TxnAction::abort:
                    serve.unlock();
                    return abort_locked(deadline, why, abort_grace);
                case TxnAction::fatal:
                    in_transaction_.store(false);
                    ctx_.fatal.store(true);
                    return TxnResult{TxnOutcome::fatal, why};
            }
        }
    };
    take_serving(serve);
    if (!offsets.empty()) {
        detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
        for (const auto& [tp, offset] : offsets)
            rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
        if (auto r = attempt([&] { return rd_kafka_send_offsets_to_transaction(rk_.get(), list.get(), group,
                                                                                ms_left(deadline)); },
                             "sending offsets", deadline))
            return *r;
    }
    // A commit that ran out of time goes on in the background and can only be resumed (an
    // abort is refused while it commits): it is resumed for abort_grace past the deadline.
    if (auto r = attempt([&] { return rd_kafka_commit_transaction(rk_.get(), std::max(ms_left(deadline), 1000)); },
                         "committing", deadline + abort_grace))
        return *r;
    in_transaction_.store(false);
    txn_committed_->inc();
    return {TxnOutcome::committed, {}};
}

void Producer::take_serving(std::unique_lock<std::mutex>& serve) {
    // The poll thread holds serve_mu_ while it waits for reports and takes it again at once:
    // it steps aside while serve_wanted_ is up, and the yield ends its current wait.
    serve_wanted_.fetch_add(1);
    rd_kafka_queue_yield(main_queue_.get());
    serve.lock();
    serve_wanted_.fetch_sub(1);
}

TxnResult Producer::abort_transaction(std::chrono::milliseconds timeout, std::string why,
                                      std::chrono::milliseconds abort_grace) {
    std::lock_guard txn(txn_mu_);
    return abort_locked(Clock::now() + timeout, std::move(why), abort_grace);
}

TxnResult Producer::abort_locked(Clock::time_point deadline, std::string why, std::chrono::milliseconds grace) {
    const auto started = Clock::now();
    // Queued records are dropped (their callbacks report the purge); those in flight finish.
    // Both are served on the serving thread before librdkafka's abort, which would serve
    // them on this one (under serve_mu_, below, should any be left).
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE);
    flush(std::chrono::milliseconds(ms_left(deadline)));
    std::unique_lock serve(serve_mu_, std::defer_lock);
    take_serving(serve);
    // An abort that runs out of time goes on in the background and is resumed by calling
    // again (librdkafka): giving up on it would leave the producer unusable, so it gets
    // `grace` beyond the caller's deadline before it counts as fatal.
    const auto last = std::max(deadline, started) + grace;
    for (;;) {
        detail::ErrorPtr e(rd_kafka_abort_transaction(rk_.get(), std::max(ms_left(deadline), 1000)));
        if (!e) break;
        if (!rd_kafka_error_is_fatal(e.get()) && rd_kafka_error_is_retriable(e.get()) && Clock::now() < last) {
            logger.warn("transaction abort still in progress; resuming it", {{"error", rd_kafka_error_string(e.get())}});
            continue;
        }
        in_transaction_.store(false);
        ctx_.fatal.store(true);
        return {TxnOutcome::fatal, why + "; the abort failed: " + rd_kafka_error_string(e.get())};
    }
    in_transaction_.store(false);
    txn_aborted_->inc();
    logger.warn("transaction aborted", {{"client", rd_kafka_name(rk_.get())}, {"reason", why},
                                        {"took_ms", static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                        Clock::now() - started).count())}});
    return {TxnOutcome::aborted, why};
}

void Producer::fail_locally(Pending* p, rd_kafka_resp_err_t err, std::string topic) {
    {
        std::lock_guard lock(local_mu_);
        local_failures_.push_back({p, err, std::move(topic)});
    }
    wake_server();
}

void Producer::serve_deliveries_on(Post post) {
    if (!post) throw std::invalid_argument("kafka producer: serve_deliveries_on needs a post function");
    {
        std::lock_guard lock(post_mu_);
        post_ = std::move(post);
        external_.store(true);
    }
    rd_kafka_queue_cb_event_enable(main_queue_.get(), &Producer::on_queue_event, this);
    rd_kafka_queue_yield(main_queue_.get());  // the poll thread leaves its poll for the safety net
    schedule_serve();                          // whatever was queued before the event was on
}

void Producer::serve_deliveries_on_own_thread() {
    if (!external_.load()) return;
    // Off first: librdkafka calls the event callback under the queue's lock, so once this
    // returns no callback is running and none will.
    rd_kafka_queue_cb_event_enable(main_queue_.get(), nullptr, nullptr);
    {
        std::lock_guard lock(post_mu_);
        post_ = nullptr;
        external_.store(false);
    }
    {
        std::lock_guard lock(mode_mu_);
        mode_cv_.notify_all();
    }
}

void Producer::on_queue_event(rd_kafka_t*, void* opaque) {
    // No librdkafka call may be made here (we are inside its queue); posting is all.
    static_cast<Producer*>(opaque)->schedule_serve();
}

bool Producer::schedule_serve() {
    if (serve_scheduled_.exchange(true)) return true;  // the serve already posted takes this too
    std::lock_guard lock(post_mu_);
    if (!post_) {
        serve_scheduled_.store(false);
        return false;
    }
    const bool taken = post_([gate = gate_] {
        std::lock_guard held(gate->mu);
        if (gate->producer) gate->producer->serve_posted();
    });
    if (!taken) serve_scheduled_.store(false);  // the safety net serves; the next report posts again
    return taken;
}

void Producer::serve_posted() {
    // Cleared before serving: a report queued from here on posts the next serve.
    serve_scheduled_.store(false);
    if (!external_.load()) return;  // given back meanwhile: the poll thread serves it
    std::lock_guard lock(serve_mu_);
    serve(0);
}

void Producer::wake_server() {
    if (!schedule_serve()) rd_kafka_queue_yield(main_queue_.get());  // the poll thread, now
}

void Producer::serve(int timeout_ms) {
    rd_kafka_poll(rk_.get(), timeout_ms);
    drain_local_failures();
}

size_t Producer::flush(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    flush_waiters_.fetch_add(1);
    {
        std::unique_lock lock(idle_mu_);
        idle_cv_.wait_until(lock, deadline, [&] { return in_flight_.load() == 0; });
    }
    flush_waiters_.fetch_sub(1);
    return in_flight_.load();
}

void Producer::notify_if_idle() {
    if (flush_waiters_.load() > 0) {
        std::lock_guard lock(idle_mu_);
        idle_cv_.notify_all();
    }
}

void Producer::on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    auto& ctx = *static_cast<detail::ClientContext*>(opaque);
    auto* self = static_cast<Producer*>(ctx.owner);
    auto* p = static_cast<Pending*>(msg->_private);
    DeliveryResult r;
    r.error = msg->err;
    r.topic = rd_kafka_topic_name(msg->rkt);
    r.partition = msg->partition;
    if (msg->err) {
        r.message = rd_kafka_err2str(msg->err);
        if (rd_kafka_message_status(msg) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED) r.message += " (possibly persisted)";
    } else {
        r.offset = msg->offset;
        ctx.all_brokers_down.store(false, std::memory_order_relaxed);
    }
    self->complete(p, r);
}

void Producer::complete(Pending* raw, DeliveryResult& r) {
    std::unique_ptr<Pending> p(raw);
    r.latency = Clock::now() - p->enqueued;
    TopicMetrics& m = topic_metrics(r.topic);
    if (r.ok()) {
        m.produced->inc();
        m.delivery->observe(std::chrono::duration<double>(r.latency).count());
    } else {
        m.errors->inc();
    }
    try {
        if (p->cb) p->cb(r);
    } catch (const std::exception& e) {
        logger.error("delivery callback threw", {{"topic", r.topic}, {"error", e.what()}});
    } catch (...) {
        logger.error("delivery callback threw", {{"topic", r.topic}});
    }
    p.reset();
    if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) notify_if_idle();
}

Producer::TopicMetrics& Producer::topic_metrics(std::string_view topic) {
    auto it = topic_metrics_.find(topic);
    if (it != topic_metrics_.end()) return it->second;
    metrics::Labels labels{{"topic", std::string(topic)}};
    TopicMetrics m{
        &metrics_.counter("omnibus_kafka_produced_total", "Records acknowledged by Kafka (acks=all)", labels),
        &metrics_.counter("omnibus_kafka_produce_errors_total", "Records whose delivery failed, remotely or locally",
                          labels),
        &metrics_.histogram("omnibus_kafka_delivery_seconds", "Time from produce() to acknowledgement",
                            metrics::latency_buckets(), labels),
    };
    return topic_metrics_.emplace(std::string(topic), m).first->second;
}

void Producer::drain_local_failures() {
    std::vector<LocalFailure> batch;
    {
        std::lock_guard lock(local_mu_);
        batch.swap(local_failures_);
    }
    for (auto& f : batch) {
        DeliveryResult r;
        r.error = f.error;
        r.message = rd_kafka_err2str(f.error);
        r.topic = std::move(f.topic);
        complete(f.pending, r);
    }
}

void Producer::poll_loop() {
    pthread_setname_np(pthread_self(), "kafka-reports");  // delivery reports and their callbacks
    while (!stop_.load()) {
        if (external_.load()) {
            // Another thread serves. This one looks every kSafetyNet for anything left:
            // reports whose serve the loop refused or dropped (a loop that is stopping).
            {
                std::unique_lock lock(mode_mu_);
                mode_cv_.wait_for(lock, kSafetyNet, [this] { return stop_.load() || !external_.load(); });
            }
            std::unique_lock lock(serve_mu_, std::try_to_lock);
            if (lock) serve(0);
            continue;
        }
        if (serve_wanted_.load() > 0) {  // a transaction call waits for serve_mu_ (take_serving)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        std::lock_guard lock(serve_mu_);
        serve(100);
    }
    std::lock_guard lock(serve_mu_);
    serve(0);
}

}  // namespace omnibus::kafka
