// Consumer-group member: incremental rebalance, synchronous or asynchronous handler per record,
// offsets stored after the work.
#include "kafka/consumer.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <limits>
#include <stdexcept>
#include <utility>

#include "kafka/client_config.h"
#include "log/log.h"

namespace omnibus::kafka {
namespace {

constexpr log::Logger logger{"kafka"};
using Clock = std::chrono::steady_clock;

std::string join(const std::vector<TopicPartition>& parts) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += ',';
        out += p.topic + '[' + std::to_string(p.partition) + ']';
    }
    return out;
}

ConsumedRecord to_record(const rd_kafka_message_t* msg) {
    ConsumedRecord c;
    c.record.topic = rd_kafka_topic_name(msg->rkt);
    if (msg->key) c.record.key.assign(static_cast<const char*>(msg->key), msg->key_len);
    if (msg->payload) c.record.value.assign(static_cast<const char*>(msg->payload), msg->len);
    rd_kafka_headers_t* hdrs = nullptr;  // owned by the message
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        const char* name = nullptr;
        const void* value = nullptr;
        size_t size = 0;
        c.record.headers.reserve(rd_kafka_header_cnt(hdrs));
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
            c.record.headers.push_back({name, value ? std::string(static_cast<const char*>(value), size) : std::string()});
    }
    c.partition = msg->partition;
    c.offset = msg->offset;
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(msg, &type);
    c.timestamp_ms = type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
    return c;
}

}  // namespace

namespace detail {

// Where Completions post their outcome (any thread) and the consumer thread collects them.
struct CompletionInbox {
    struct Item {
        TopicPartition tp;
        uint64_t generation = 0;
        int64_t offset = 0;
        CompletionOutcome outcome = CompletionOutcome::done;
    };

    void post(Item item) {
        std::lock_guard lock(mu);
        if (!open) return;  // the consumer is gone: nothing can be stored any more
        bool was_empty = items.empty();
        items.push_back(std::move(item));
        if (!was_empty) return;  // the consumer thread was woken for the first one already
        cv.notify_one();         // a revocation waiting for records in flight
        // A consumer_poll of the consumer thread: cut it short (rd_kafka_queue_yield keeps the
        // wake-up for the next poll when none is running). Not needed from the consumer thread.
        if (wake && std::this_thread::get_id() != owner) rd_kafka_queue_yield(wake.get());
    }

    std::vector<Item> take() {
        std::lock_guard lock(mu);
        return std::exchange(items, {});
    }

    void wait_until(Clock::time_point deadline) {
        std::unique_lock lock(mu);
        cv.wait_until(lock, deadline, [&] { return !items.empty(); });
    }

    void start(rd_kafka_queue_t* consumer_queue, std::thread::id consumer_thread) {
        std::lock_guard lock(mu);
        wake.reset(consumer_queue);
        owner = consumer_thread;
    }

    // Before the rd_kafka_t goes: later posts are dropped.
    void close() {
        std::lock_guard lock(mu);
        open = false;
        items.clear();
        wake.reset();
    }

    std::mutex mu;
    std::condition_variable cv;
    std::vector<Item> items;  // guarded by mu
    bool open = true;         // guarded by mu
    QueuePtr wake;            // guarded by mu: the consumer queue
    std::thread::id owner;    // guarded by mu: the consumer thread
};

}  // namespace detail

struct Completion::State {
    std::shared_ptr<detail::CompletionInbox> inbox;
    TopicPartition tp;
    uint64_t generation = 0;
    int64_t offset = 0;
    std::atomic<bool> called{false};
};

Completion& Completion::operator=(Completion&& other) noexcept {
    if (this != &other) {
        finish(detail::CompletionOutcome::dropped);
        state_ = std::move(other.state_);
    }
    return *this;
}

Completion::~Completion() { finish(detail::CompletionOutcome::dropped); }

bool Completion::pending() const noexcept { return state_ && !state_->called.load(); }

void Completion::finish(detail::CompletionOutcome outcome) const noexcept {
    if (!state_ || state_->called.exchange(true)) return;
    state_->inbox->post({state_->tp, state_->generation, state_->offset, outcome});
}

Consumer::Consumer(const KafkaSettings& settings, ConsumerOptions options, metrics::Registry& metrics)
    : settings_(settings), options_(std::move(options)) {
    if (options_.group_id.empty()) throw std::invalid_argument("kafka consumer: group_id is required");
    if (options_.topics.empty()) throw std::invalid_argument("kafka consumer: at least one topic is required");
    if (!options_.handler && !options_.async_handler)
        throw std::invalid_argument("kafka consumer: a record handler is required");
    if (options_.handler && options_.async_handler)
        throw std::invalid_argument("kafka consumer: set either handler or async_handler, not both");
    async_ = static_cast<bool>(options_.async_handler);
    if (async_ && options_.max_in_flight == 0)
        throw std::invalid_argument("kafka consumer: max_in_flight must be at least 1");
    txn_ = options_.transactional_producer;
    if (txn_ && (!async_ || !txn_->transactional()))
        throw std::invalid_argument("kafka consumer: transactions need the asynchronous handler and a transactional producer");

    metrics::Labels labels{{"group", options_.group_id}};
    consumed_ = &metrics.counter("omnibus_kafka_consumed_total", "Records handed to a consumer handler", labels);
    retried_ = &metrics.counter("omnibus_kafka_consume_retries_total", "Records a handler asked to retry", labels);
    abandoned_ = &metrics.counter("omnibus_kafka_consume_abandoned_total",
                                  "Records an asynchronous handler's owner abandoned (or dropped uncompleted)", labels);
    rebalances_ = &metrics.counter("omnibus_kafka_rebalances_total", "Partition assignments and revocations", labels);
    in_flight_gauge_ = &metrics.gauge("omnibus_kafka_consume_in_flight",
                                      "Records handed to an asynchronous handler, neither done nor abandoned", labels);
    inbox_ = std::make_shared<detail::CompletionInbox>();

    ctx_->role = "consumer";
    ctx_->owner = this;
    Properties props = consumer_properties(settings_, options_.group_id, txn_ != nullptr);
    ctx_->secrets = detail::secret_values(props);
    detail::ConfPtr conf = detail::make_conf(props);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &Consumer::on_rebalance);
    rk_ = detail::new_handle(RD_KAFKA_CONSUMER, std::move(conf), *ctx_);
    rd_kafka_poll_set_consumer(rk_.get());  // error and log events are served by consumer_poll

    detail::PartitionListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
    for (const auto& t : options_.topics) rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics.get()))
        throw std::runtime_error("kafka consumer: cannot subscribe: " + std::string(rd_kafka_err2str(err)));

    thread_ = std::thread(&Consumer::run, this);
    inbox_->start(rd_kafka_queue_get_consumer(rk_.get()), thread_.get_id());
    logger.info("consumer started", {{"client", rd_kafka_name(rk_.get())},
                                     {"group", options_.group_id},
                                     {"brokers", settings_.brokers},
                                     {"mode", txn_ ? "transactional" : async_ ? "async" : "sync"}});
}

Consumer::~Consumer() { stop(); }

bool Consumer::stop() {
    std::lock_guard lock(stop_mu_);
    if (!thread_.joinable()) return closed_ok_.load();
    stop_.store(true);
    {
        detail::QueuePtr q(rd_kafka_queue_get_consumer(rk_.get()));
        if (q) rd_kafka_queue_yield(q.get());  // cut the current consumer_poll short
    }
    thread_.join();
    inbox_->close();  // before the handle goes: Completions still out there post nowhere
    if (destroy_unsafe_.load()) {
        // Closed (the group was left) but not destroyed: librdkafka would abort. The handle's
        // threads, sockets and the context its callbacks use stay until the process exits.
        logger.warn("consumer closed before its first assignment; its client is left to the process's exit "
                    "(librdkafka before 2.3.0 aborts when destroying it)",
                    {{"group", options_.group_id}});
        (void)rk_.release();
        (void)new std::shared_ptr<detail::ClientContext>(ctx_);  // a reference never dropped: it outlives us
    } else if (closed_ok_.load()) {
        rk_.reset();
    } else {
        // The close did not finish in time: do not let rd_kafka_destroy block on it again.
        rd_kafka_destroy_flags(rk_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    set_assignment({});
    logger.info("consumer stopped", {{"group", options_.group_id}, {"clean", closed_ok_.load()}});
    return closed_ok_.load();
}

std::string Consumer::member_id() const {
    std::lock_guard lock(stop_mu_);  // the handle lives until stop() is through
    return rk_ ? handle_member_id() : std::string();
}

std::string Consumer::handle_member_id() const {
    char* id = rd_kafka_memberid(rk_.get());
    std::string out = id ? id : "";
    if (id) rd_kafka_mem_free(rk_.get(), id);
    return out;
}

std::vector<TopicPartition> Consumer::assignment() const {
    std::lock_guard lock(assignment_mu_);
    return assignment_;
}

void Consumer::set_assignment(std::vector<TopicPartition> parts) {
    std::sort(parts.begin(), parts.end());
    std::lock_guard lock(assignment_mu_);
    assignment_ = std::move(parts);
    assigned_count_.store(assignment_.size());
}

void Consumer::run() {
    // "c:" and the group's last part ("omnibus.conversation" → "c:conversation"), so that
    // top -H and perf tell the stages apart (Linux keeps 15 characters).
    const std::string& g = options_.group_id;
    pthread_setname_np(pthread_self(), ("c:" + g.substr(g.rfind('.') + 1)).substr(0, 15).c_str());
    if (txn_) begin_transaction();
    while (!stop_.load()) {
        if (async_) {
            apply_completions();
            rewind_abandoned();
            throttle();
        }
        if (txn_ && !txn_broken_) {
            if (txn_must_abort_) end_transaction("a record was abandoned", true, false);
            else if (txn_dirty_ && Clock::now() >= txn_due_) end_transaction("interval", false, true);
            if (!txn_open_ && !txn_broken_) begin_transaction();
        }
        resume_due();
        if (pauses_changed_) update_pauses();
        int timeout_ms = 100;
        for (const auto& [tp, p] : parts_) {
            if (paused_count_ == 0) break;
            if (!p.resume_at) continue;
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*p.resume_at - Clock::now()).count();
            timeout_ms = static_cast<int>(std::clamp<long long>(wait, 0, timeout_ms));
        }
        detail::MessagePtr msg(rd_kafka_consumer_poll(rk_.get(), timeout_ms));
        if (!msg) continue;
        if (msg->err) {
            if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) continue;
            logger.warn("consumer error", {{"group", options_.group_id},
                                           {"error", rd_kafka_err2name(msg->err)},
                                           {"reason", rd_kafka_message_errstr(msg.get())}});
            continue;
        }
        ctx_->all_brokers_down.store(false, std::memory_order_relaxed);
        if (async_) handle_async(msg.get());
        else handle(msg.get());
    }
    await_first_assignment();
    closed_ok_.store(close_handle());
    if (in_flight_ > 0) add_in_flight(-static_cast<long>(in_flight_));  // the close timed out: nobody waits
}

// librdkafka before 2.3.0 aborts the process (an assert in the cooperative-sticky assignor)
// when a member is destroyed after its JoinGroup response and before its first assignment:
// the group has chosen the assignor, whose state only exists once an assignment arrived
// (librdkafka issue 4312, fixed in 2.3.0). The JoinGroup response also gives the member its
// id. A member stopped with an id and no assignment yet therefore waits for that assignment,
// at most kafka.close_timeout and not while every broker is down; if it still has none, the
// handle is closed but not destroyed (stop()). Records polled meanwhile are not handed out and
// their offsets not stored: the group hands them out again. An assignment that arrives now
// runs on_assigned as usual, and the close revokes it at once. A member without an id closes
// at once: a JoinGroup response that arrives once the close began is ignored by librdkafka
// (only one handled in the instant between the check and the close could still set the
// assignor; brokers answer a new group's JoinGroup after group.initial.rebalance.delay.ms, so
// that instant is rarely hit, and a stop in those first seconds stays fast).
void Consumer::await_first_assignment() {
    if (assigned_once_ || rd_kafka_version() >= 0x020300ff || handle_member_id().empty()) return;
    const auto t0 = Clock::now();
    while (!assigned_once_ && Clock::now() - t0 < settings_.close_timeout && !ctx_->all_brokers_down.load())
        detail::MessagePtr msg(rd_kafka_consumer_poll(rk_.get(), 50));
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    if (!assigned_once_) {
        destroy_unsafe_.store(!handle_member_id().empty());
        logger.warn("consumer closing before its first assignment arrived", {{"group", options_.group_id},
                                                                              {"waited_ms", static_cast<long long>(waited)}});
    } else {
        logger.info("consumer waited for its first assignment before closing",
                    {{"group", options_.group_id}, {"waited_ms", static_cast<long long>(waited)}});
    }
}

void Consumer::handle(const rd_kafka_message_t* msg) {
    const char* topic = rd_kafka_topic_name(msg->rkt);
    // A record of a partition waiting to be retried: librdkafka drops prefetched records on
    // pause/seek, this is the belt to those braces. It comes again from the rewind position.
    if (paused_count_ > 0 && is_paused(topic, msg->partition)) return;

    ConsumedRecord rec = to_record(msg);
    consumed_->inc();
    Disposition d = Disposition::retry;
    try {
        d = options_.handler(rec);
    } catch (const std::exception& e) {
        logger.error("record handler threw; will retry the record",
                     {{"topic", topic}, {"partition", msg->partition}, {"offset", static_cast<long long>(msg->offset)},
                      {"error", e.what()}});
    } catch (...) {
        logger.error("record handler threw; will retry the record",
                     {{"topic", topic}, {"partition", msg->partition}, {"offset", static_cast<long long>(msg->offset)}});
    }
    if (d == Disposition::retry) {
        retry_later(msg);
        return;
    }
    if (rd_kafka_resp_err_t err = rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset)) {
        // _STATE: the partition was revoked meanwhile; its next owner gets the record again.
        logger.warn("cannot store offset", {{"topic", topic},
                                             {"partition", msg->partition},
                                             {"error", rd_kafka_err2name(err)}});
    }
}

void Consumer::handle_async(const rd_kafka_message_t* msg) {
    TopicPartition tp{rd_kafka_topic_name(msg->rkt), msg->partition};
    auto it = parts_.find(tp);
    if (it == parts_.end()) return;  // not assigned here (any more): its owner gets it
    PartitionState& p = it->second;
    // Fetched before a pause took effect (librdkafka drops those; belt to those braces). A
    // partition waiting for a rewind, or rewound already, gets this record again from there.
    // One paused at max_in_flight hands it out: it resumes at p.next, after it.
    if (p.abandoned >= 0 || p.resume_at) return;
    if (txn_) {
        // Fetched before the pause of a rollback or a broken transaction took effect.
        if (txn_broken_ || txn_must_abort_ || !txn_open_) return;
        if (p.committed < 0) p.committed = msg->offset;  // where this member started it
        if (!txn_dirty_) txn_due_ = Clock::now() + options_.transaction_interval;
        txn_dirty_ = true;
    }

    ConsumedRecord rec = to_record(msg);
    consumed_->inc();
    p.in_flight.insert(msg->offset);
    p.next = std::max(p.next, msg->offset + 1);
    add_in_flight(1);
    auto state = std::make_shared<Completion::State>();
    state->inbox = inbox_;
    state->tp = tp;
    state->generation = p.generation;
    state->offset = msg->offset;
    try {
        options_.async_handler(rec, Completion(std::move(state)));
    } catch (const std::exception& e) {
        logger.error("asynchronous record handler threw; the record counts as abandoned",
                     {{"topic", tp.topic}, {"partition", tp.partition},
                      {"offset", static_cast<long long>(msg->offset)}, {"error", e.what()}});
    } catch (...) {
        logger.error("asynchronous record handler threw; the record counts as abandoned",
                     {{"topic", tp.topic}, {"partition", tp.partition},
                      {"offset", static_cast<long long>(msg->offset)}});
    }
}

void Consumer::retry_later(const rd_kafka_message_t* msg) {
    retried_->inc();
    TopicPartition tp{rd_kafka_topic_name(msg->rkt), msg->partition};
    PartitionState& p = parts_[tp];
    // Pause first (it drops the partition's prefetched records), then rewind to this record:
    // on resume the fetcher starts at the rewound position.
    if (!p.paused) {
        pause({tp});
        p.paused = true;
        ++paused_count_;
    }
    seek({{tp, msg->offset}}, "retry");
    p.resume_at = Clock::now() + options_.retry_backoff;
}

void Consumer::resume_due() {
    if (paused_count_ == 0) return;
    auto now = Clock::now();
    for (auto& [tp, p] : parts_) {
        if (p.resume_at && *p.resume_at <= now) {
            p.resume_at.reset();
            pauses_changed_ = true;
        }
    }
}

bool Consumer::is_paused(const char* topic, int32_t partition) const {
    auto it = parts_.find(TopicPartition{topic, partition});
    return it != parts_.end() && it->second.paused;
}

bool Consumer::wants_pause(const PartitionState& p) const {
    return throttled_ || txn_broken_ || p.abandoned >= 0 || p.resume_at.has_value();
}

void Consumer::update_pauses() {
    pauses_changed_ = false;
    std::vector<TopicPartition> to_pause, to_resume;
    std::vector<std::pair<TopicPartition, int64_t>> positions;
    for (auto& [tp, p] : parts_) {
        bool want = wants_pause(p);
        if (want == p.paused) continue;
        p.paused = want;
        if (want) {
            ++paused_count_;
            to_pause.push_back(tp);
        } else {
            --paused_count_;
            to_resume.push_back(tp);
            if (async_ && p.next >= 0) positions.emplace_back(tp, p.next);
        }
    }
    if (!to_pause.empty()) pause(to_pause);
    if (!to_resume.empty()) resume(to_resume);
    // Resume at the record after the last one handed out, from this layer's own books (before
    // the first record librdkafka knows best). The seek also wakes the fetcher: a resume alone
    // waits for the broker thread's next wake-up (about 0.5 s with librdkafka 2.0.2).
    if (!positions.empty()) seek(positions, "resume");
}

void Consumer::pause(const std::vector<TopicPartition>& parts) {
    detail::PartitionListPtr list = detail::to_list(parts);
    if (rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk_.get(), list.get()))
        logger.error("cannot pause partitions", {{"group", options_.group_id}, {"error", rd_kafka_err2str(err)}});
}

void Consumer::resume(const std::vector<TopicPartition>& parts) {
    detail::PartitionListPtr list = detail::to_list(parts);
    if (rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk_.get(), list.get()))
        logger.error("cannot resume partitions", {{"group", options_.group_id}, {"error", rd_kafka_err2str(err)}});
}

void Consumer::seek(const std::vector<std::pair<TopicPartition, int64_t>>& positions, const char* why) {
    detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(positions.size())));
    for (const auto& [tp, offset] : positions)
        rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
    detail::ErrorPtr err(rd_kafka_seek_partitions(rk_.get(), list.get(), 1000));
    for (int i = 0; i < list->cnt; ++i) {
        const rd_kafka_topic_partition_t& e = list->elems[i];
        if (!err && !e.err) continue;
        logger.error("cannot rewind partition",
                     {{"topic", e.topic},
                      {"partition", e.partition},
                      {"for", why},
                      {"error", err ? rd_kafka_error_string(err.get()) : rd_kafka_err2str(e.err)}});
    }
}

void Consumer::apply_completions() {
    std::vector<detail::CompletionInbox::Item> items = inbox_->take();
    if (items.empty()) return;
    std::set<TopicPartition> touched;
    for (auto& item : items) {
        if (item.outcome == detail::CompletionOutcome::dropped && !drop_logged_) {
            drop_logged_ = true;
            logger.error("a Completion was destroyed without being called: a bug in the handler's owner; the record "
                         "counts as abandoned (logged once per consumer; omnibus_kafka_consume_abandoned_total counts)",
                         {{"group", options_.group_id}, {"topic", item.tp.topic}, {"partition", item.tp.partition},
                          {"offset", static_cast<long long>(item.offset)}});
        }
        auto it = parts_.find(item.tp);
        // Given up since, or owned again in a newer generation: the current owner decides.
        if (it == parts_.end() || it->second.generation != item.generation) continue;
        PartitionState& p = it->second;
        if (p.in_flight.erase(item.offset) == 0) continue;
        add_in_flight(-1);
        if (item.outcome != detail::CompletionOutcome::done) {
            abandoned_->inc();
            if (txn_) {
                txn_must_abort_ = true;  // the whole transaction goes: see end_transaction
                continue;
            }
            if (p.abandoned < 0 || item.offset < p.abandoned) p.abandoned = item.offset;
            pauses_changed_ = true;
        }
        if (p.abandoned >= 0 && p.in_flight.empty()) to_rewind_.push_back(item.tp);
        touched.insert(item.tp);
    }
    store_offsets(touched);
}

void Consumer::store_offsets(const std::set<TopicPartition>& touched) {
    std::vector<std::pair<TopicPartition, int64_t>> advance;
    for (const auto& tp : touched) {
        PartitionState& p = parts_.at(tp);
        if (p.next < 0) continue;
        // The lowest offset not done: what is contiguous below it is finished.
        int64_t low = p.next;
        if (!p.in_flight.empty()) low = std::min(low, *p.in_flight.begin());
        if (p.abandoned >= 0) low = std::min(low, p.abandoned);
        if (low <= p.stored) continue;
        p.stored = low;
        advance.emplace_back(tp, low);
    }
    if (advance.empty() || txn_) return;  // transactional: sent with the transaction's commit
    detail::PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(advance.size())));
    for (const auto& [tp, offset] : advance)
        rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
    rd_kafka_offsets_store(rk_.get(), list.get());
    for (int i = 0; i < list->cnt; ++i) {
        const rd_kafka_topic_partition_t& e = list->elems[i];
        if (!e.err) continue;
        // _STATE: not assigned in librdkafka any more; its next owner gets the records again.
        logger.warn("cannot store offset",
                    {{"topic", e.topic}, {"partition", e.partition}, {"error", rd_kafka_err2name(e.err)}});
    }
}

void Consumer::rewind_abandoned() {
    if (to_rewind_.empty()) return;
    std::vector<std::pair<TopicPartition, int64_t>> rewind;
    for (const auto& tp : to_rewind_) {
        auto it = parts_.find(tp);
        if (it == parts_.end()) continue;
        PartitionState& p = it->second;
        if (p.abandoned < 0 || !p.in_flight.empty()) continue;  // listed twice, or handed out again
        if (!p.paused) {  // abandoned and drained within one drain: not paused yet
            pause({tp});
            p.paused = true;
            ++paused_count_;
        }
        rewind.emplace_back(tp, p.abandoned);
        logger.info("abandoned record handed out again after the backoff",
                    {{"group", options_.group_id}, {"topic", tp.topic}, {"partition", tp.partition},
                     {"offset", static_cast<long long>(p.abandoned)}});
        p.next = p.abandoned;
        p.abandoned = -1;
        p.resume_at = Clock::now() + options_.retry_backoff;
    }
    to_rewind_.clear();
    if (!rewind.empty()) seek(rewind, "abandon");
}

void Consumer::throttle() {
    // Resume only well below the bound: each pause throws librdkafka's prefetched records away.
    std::size_t resume_below = options_.max_in_flight - options_.max_in_flight / 4;
    if (!throttled_ && in_flight_ >= options_.max_in_flight) {
        throttled_ = true;
        pauses_changed_ = true;
    } else if (throttled_ && in_flight_ < resume_below) {
        throttled_ = false;
        pauses_changed_ = true;
    }
}

void Consumer::add_in_flight(long delta) {
    in_flight_ = static_cast<std::size_t>(static_cast<long>(in_flight_) + delta);
    in_flight_count_.store(in_flight_, std::memory_order_relaxed);
    in_flight_gauge_->add(static_cast<double>(delta));
}

bool Consumer::await_completions(const std::vector<TopicPartition>& parts, std::optional<Clock::duration> budget) {
    auto start = Clock::now();
    auto deadline = start + budget.value_or(settings_.close_timeout);
    auto open = [&] {
        std::size_t n = 0;
        for (const auto& tp : parts)
            if (auto it = parts_.find(tp); it != parts_.end()) n += it->second.in_flight.size();
        return n;
    };
    bool finished = true;
    for (;;) {
        apply_completions();
        std::size_t n = open();
        if (n == 0) break;
        if (Clock::now() >= deadline) {
            logger.warn(txn_ ? "records still in flight at the end of a transaction; it is aborted and their "
                               "completions will be ignored"
                             : "revoking partitions with records still in flight; their completions will be ignored",
                        {{"group", options_.group_id}, {"partitions", join(parts)}, {"in_flight", n}});
            finished = false;
            break;
        }
        inbox_->wait_until(deadline);
    }
    revoke_waits_ += Clock::now() - start;
    return finished;
}

void Consumer::forget(const std::vector<TopicPartition>& parts) {
    std::vector<TopicPartition> unpause;
    for (const auto& tp : parts) {
        auto it = parts_.find(tp);
        if (it == parts_.end()) continue;
        // Given up unpaused: librdkafka keeps an application pause across unassign and assign.
        if (it->second.paused) {
            unpause.push_back(tp);
            --paused_count_;
        }
        if (!it->second.in_flight.empty()) add_in_flight(-static_cast<long>(it->second.in_flight.size()));
        parts_.erase(it);
    }
    if (!unpause.empty()) resume(unpause);
}

void Consumer::on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                            void* opaque) {
    static_cast<Consumer*>(static_cast<detail::ClientContext*>(opaque)->owner)->rebalance(err, parts);
}

void Consumer::rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    rebalances_->inc();
    std::vector<TopicPartition> changed = detail::from_list(parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assigned_once_ = true;
        if (detail::ErrorPtr e{rd_kafka_incremental_assign(rk_.get(), parts)})
            logger.error("incremental assign failed", {{"group", options_.group_id}, {"error", rd_kafka_error_string(e.get())}});
        for (const auto& tp : changed) {
            PartitionState fresh;
            fresh.generation = ++generations_;
            parts_.insert_or_assign(tp, std::move(fresh));
        }
        // At max_in_flight: the new partitions start paused, before they fetch anything.
        if (throttled_) update_pauses();
        // Records only reach the handler from this thread's next poll, so the hook always
        // runs before the first record of these partitions.
        call_hook(options_.on_assigned, changed, "on_assigned");
        std::vector<TopicPartition> now = assignment();
        now.insert(now.end(), changed.begin(), changed.end());
        set_assignment(std::move(now));
        if (!changed.empty())
            logger.info("partitions assigned", {{"group", options_.group_id}, {"partitions", join(changed)}});
        return;
    }

    bool revoke = err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
    bool lost = !revoke || rd_kafka_assignment_lost(rk_.get());
    if (!revoke) {
        logger.error("rebalance error; dropping the assignment",
                     {{"group", options_.group_id}, {"error", rd_kafka_err2str(err)}});
        changed = assignment();  // everything goes
        for (const auto& [tp, p] : parts_)
            if (std::find(changed.begin(), changed.end(), tp) == changed.end()) changed.push_back(tp);
    }

    if (txn_) {
        // The transaction spans every partition: all their work ends with it, then the owner
        // lets these go (its checkpoints then match what was committed).
        if (!txn_broken_ && txn_open_) end_transaction(lost ? "partitions lost" : "revoke", lost, false);
        call_hook(options_.on_revoked, changed, "on_revoked");
    } else if (async_) {
        // The owner first: it finishes or abandons the work of these partitions.
        call_hook(options_.on_revoked, changed, "on_revoked");
        if (!lost) {
            await_completions(changed);
            commit_sync("revoke");
        }
    } else {
        // Partitions waiting for a retry are given up with their offsets unstored.
        if (!lost) commit_sync("revoke");
        call_hook(options_.on_revoked, changed, "on_revoked");
    }
    forget(changed);  // completions still to come for these are ignored from here on

    std::vector<TopicPartition> now = assignment();
    std::erase_if(now, [&](const TopicPartition& tp) {
        return !revoke || std::find(changed.begin(), changed.end(), tp) != changed.end();
    });
    set_assignment(std::move(now));
    if (revoke) {
        if (detail::ErrorPtr e{rd_kafka_incremental_unassign(rk_.get(), parts)})
            logger.error("incremental unassign failed",
                         {{"group", options_.group_id}, {"error", rd_kafka_error_string(e.get())}});
    } else {
        rd_kafka_assign(rk_.get(), nullptr);
    }
    if (!changed.empty())
        logger.info(lost ? "partitions lost" : "partitions revoked",
                    {{"group", options_.group_id}, {"partitions", join(changed)}});
}

std::vector<TopicPartition> Consumer::all_partitions() const {
    std::vector<TopicPartition> out;
    out.reserve(parts_.size());
    for (const auto& [tp, p] : parts_) out.push_back(tp);
    return out;
}

void Consumer::begin_transaction() {
    std::string error = txn_->begin_transaction();
    if (error.empty()) {
        txn_open_ = true;
        return;
    }
    logger.error("cannot begin a transaction; consuming stops", {{"group", options_.group_id}, {"error", error}});
    txn_broken_ = true;
    ctx_->fatal.store(true);
    pauses_changed_ = true;
}

std::chrono::milliseconds Consumer::abort_grace() const {
    // At shutdown the close's budget is what counts; an abort left unfinished then is ended by
    // the broker (transaction.timeout.ms) and fences nothing.
    return stop_.load() ? std::chrono::milliseconds(0) : kTxnResumeGrace;
}

bool Consumer::end_transaction(const char* why, bool abort, bool patient) {
    // Nothing new is handed out meanwhile: this thread does not poll until it is done. The
    // interval's commit waits until every record in flight is acknowledged or has failed
    // (kafka.message_timeout): giving up earlier would abort, rebuild the stores and redo the
    // work while a broker is slow. A rebalance (and the close) waits kafka.close_timeout.
    std::vector<TopicPartition> parts = all_partitions();
    std::optional<Clock::duration> budget;
    if (patient) budget = settings_.message_timeout + settings_.close_timeout;
    if (!abort && !await_completions(parts, budget)) abort = true;  // unfinished work cannot be committed
    if (txn_must_abort_) abort = true;
    TxnResult result;
    if (abort) {
        // The abort fails what is still queued; the owner's callbacks for it run before its
        // state is rolled back.
        result = txn_->abort_transaction(settings_.close_timeout, why, abort_grace());
        await_completions(parts);
    } else {
        std::vector<std::pair<TopicPartition, int64_t>> offsets;
        for (const auto& [tp, p] : parts_)
            if (p.stored > p.committed) offsets.emplace_back(tp, p.stored);
        std::unique_ptr<rd_kafka_consumer_group_metadata_t, void (*)(rd_kafka_consumer_group_metadata_t*)> group(
            rd_kafka_consumer_group_metadata(rk_.get()), rd_kafka_consumer_group_metadata_destroy);
        result = txn_->commit_transaction(offsets, group.get(), settings_.close_timeout, abort_grace());
        if (result.outcome == TxnOutcome::committed)
            for (auto& [tp, p] : parts_)
                if (p.stored > p.committed) p.committed = p.stored;
    }
    txn_open_ = false;
    txn_dirty_ = false;
    txn_must_abort_ = false;
    const bool committed = result.outcome == TxnOutcome::committed;
    if (result.outcome == TxnOutcome::fatal) {
        logger.error("transaction failed fatally; consuming stops",
                     {{"group", options_.group_id}, {"on", why}, {"error", result.error}});
        txn_broken_ = true;
        ctx_->fatal.store(true);
    }
    if (!committed) roll_back(why);
    // At once, not at the loop's next turn: the poll that called a rebalance may hand out a
    // record right after it, and a record needs an open transaction.
    // Not when stopping: nothing is handed out any more.
    if (!txn_broken_ && !stop_.load()) begin_transaction();
    if (txn_broken_) update_pauses();
    return committed;
}

void Consumer::roll_back(const char* why) {
    std::vector<TopicPartition> parts = all_partitions();
    logger.warn("transaction aborted; partitions handed out again from their last commit",
                {{"group", options_.group_id}, {"on", why}, {"partitions", join(parts)}});
    // Pause everything (dropping what librdkafka prefetched), forget the work in flight (its
    // late completions belong to an old generation), rewind to the last commit.
    std::vector<TopicPartition> to_pause;
    for (auto& [tp, p] : parts_) {
        if (!p.paused) {
            p.paused = true;
            ++paused_count_;
            to_pause.push_back(tp);
        }
        if (!p.in_flight.empty()) add_in_flight(-static_cast<long>(p.in_flight.size()));
        p.in_flight.clear();
        p.generation = ++generations_;
        p.abandoned = -1;
        p.resume_at = Clock::now() + options_.retry_backoff;  // as an abandoned record: not at once
        p.next = p.committed;
        p.stored = p.committed;
    }
    if (!to_pause.empty()) pause(to_pause);
    to_rewind_.clear();
    call_hook(options_.on_aborted, parts, "on_aborted");
    pauses_changed_ = true;  // resumed (with a seek to p.next) by the loop unless broken
}

void Consumer::commit_sync(const char* why) {
    if (txn_) return;  // transactional: offsets are committed only with a transaction
    // rd_kafka_commit(sync) has no time bound; commit through a private queue and wait for
    // the result at most close_timeout. A commit that does not make it only means the next
    // owner re-processes some records (at-least-once).
    detail::QueuePtr q(rd_kafka_queue_new(rk_.get()));
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(rk_.get(), nullptr, q.get(), nullptr, nullptr);
    if (!err) {
        detail::EventPtr ev(rd_kafka_queue_poll(q.get(), static_cast<int>(settings_.close_timeout.count())));
        err = ev ? rd_kafka_event_error(ev.get()) : RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        logger.warn("offset commit failed", {{"group", options_.group_id}, {"on", why}, {"error", rd_kafka_err2str(err)}});
}

bool Consumer::close_handle() {
    detail::QueuePtr q(rd_kafka_queue_new(rk_.get()));
    if (detail::ErrorPtr e{rd_kafka_consumer_close_queue(rk_.get(), q.get())}) {
        logger.error("consumer close failed", {{"group", options_.group_id}, {"error", rd_kafka_error_string(e.get())}});
        return false;
    }
    auto deadline = Clock::now() + settings_.close_timeout;
    Clock::duration waited_before = revoke_waits_;
    while (!rd_kafka_consumer_closed(rk_.get())) {
        // Waiting for records in flight on the final revoke is not part of the close's budget.
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline + (revoke_waits_ - waited_before) -
                                                                          Clock::now())
                        .count();
        if (left <= 0) {
            logger.warn("consumer close timed out", {{"group", options_.group_id}});
            return false;
        }
        detail::EventPtr ev(rd_kafka_queue_poll(q.get(), static_cast<int>(std::min<long long>(left, 100))));
        if (ev && rd_kafka_event_type(ev.get()) == RD_KAFKA_EVENT_REBALANCE)
            rebalance(rd_kafka_event_error(ev.get()), rd_kafka_event_topic_partition_list(ev.get()));
    }
    return true;
}

void Consumer::call_hook(const PartitionsHook& hook, const std::vector<TopicPartition>& parts, const char* name) {
    if (!hook || parts.empty()) return;
    try {
        hook(parts);
    } catch (const std::exception& e) {
        logger.error("partition hook threw", {{"hook", name}, {"group", options_.group_id}, {"error", e.what()}});
    } catch (...) {
        logger.error("partition hook threw", {{"hook", name}, {"group", options_.group_id}});
    }
}

}  // namespace omnibus::kafka
