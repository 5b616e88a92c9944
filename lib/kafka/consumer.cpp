// Consumer-group member: incremental rebalance, handler per record, offsets stored after the work.
#include "kafka/consumer.h"

#include <algorithm>
#include <stdexcept>

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

Consumer::Consumer(const KafkaSettings& settings, ConsumerOptions options, metrics::Registry& metrics)
    : settings_(settings), options_(std::move(options)) {
    if (options_.group_id.empty()) throw std::invalid_argument("kafka consumer: group_id is required");
    if (options_.topics.empty()) throw std::invalid_argument("kafka consumer: at least one topic is required");
    if (!options_.handler) throw std::invalid_argument("kafka consumer: a record handler is required");

    metrics::Labels labels{{"group", options_.group_id}};
    consumed_ = &metrics.counter("omnibus_kafka_consumed_total", "Records handed to a consumer handler", labels);
    retried_ = &metrics.counter("omnibus_kafka_consume_retries_total", "Records a handler asked to retry", labels);
    rebalances_ = &metrics.counter("omnibus_kafka_rebalances_total", "Partition assignments and revocations", labels);

    ctx_.role = "consumer";
    ctx_.owner = this;
    Properties props = consumer_properties(settings_, options_.group_id);
    ctx_.secrets = detail::secret_values(props);
    detail::ConfPtr conf = detail::make_conf(props);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &Consumer::on_rebalance);
    rk_ = detail::new_handle(RD_KAFKA_CONSUMER, std::move(conf), ctx_);
    rd_kafka_poll_set_consumer(rk_.get());  // error and log events are served by consumer_poll

    detail::PartitionListPtr topics(rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
    for (const auto& t : options_.topics) rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), topics.get()))
        throw std::runtime_error("kafka consumer: cannot subscribe: " + std::string(rd_kafka_err2str(err)));

    thread_ = std::thread(&Consumer::run, this);
    logger.info("consumer started", {{"client", rd_kafka_name(rk_.get())},
                                     {"group", options_.group_id},
                                     {"brokers", settings_.brokers}});
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
    if (closed_ok_.load()) {
        rk_.reset();
    } else {
        // The close did not finish in time: do not let rd_kafka_destroy block on it again.
        rd_kafka_destroy_flags(rk_.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    set_assignment({});
    logger.info("consumer stopped", {{"group", options_.group_id}, {"clean", closed_ok_.load()}});
    return closed_ok_.load();
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
    while (!stop_.load()) {
        resume_due();
        int timeout_ms = 100;
        if (!paused_.empty()) {
            auto next = std::min_element(paused_.begin(), paused_.end(),
                                         [](const Paused& a, const Paused& b) { return a.resume_at < b.resume_at; });
            auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next->resume_at - Clock::now()).count();
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
        ctx_.all_brokers_down.store(false, std::memory_order_relaxed);
        handle(msg.get());
    }
    closed_ok_.store(close_handle());
}

void Consumer::handle(const rd_kafka_message_t* msg) {
    const char* topic = rd_kafka_topic_name(msg->rkt);
    // A record of a partition waiting to be retried: librdkafka drops prefetched records on
    // pause/seek, this is the belt to those braces. It comes again from the rewind position.
    if (!paused_.empty() && is_paused(topic, msg->partition)) return;

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

void Consumer::retry_later(const rd_kafka_message_t* msg) {
    retried_->inc();
    TopicPartition tp{rd_kafka_topic_name(msg->rkt), msg->partition};
    detail::PartitionListPtr list = detail::to_list({tp});
    // Pause first (it drops the partition's prefetched records), then rewind to this record:
    // on resume the fetcher starts at the rewound position.
    rd_kafka_pause_partitions(rk_.get(), list.get());
    list->elems[0].offset = msg->offset;
    detail::ErrorPtr err(rd_kafka_seek_partitions(rk_.get(), list.get(), 1000));
    if (err || list->elems[0].err) {
        logger.error("cannot rewind partition for retry",
                     {{"topic", tp.topic},
                      {"partition", tp.partition},
                      {"error", err ? rd_kafka_error_string(err.get()) : rd_kafka_err2str(list->elems[0].err)}});
    }
    paused_.push_back({std::move(tp), Clock::now() + options_.retry_backoff});
}

void Consumer::resume_due() {
    if (paused_.empty()) return;
    auto now = Clock::now();
    std::vector<TopicPartition> due;
    std::erase_if(paused_, [&](const Paused& p) {
        if (p.resume_at > now) return false;
        due.push_back(p.tp);
        return true;
    });
    if (due.empty()) return;
    detail::PartitionListPtr list = detail::to_list(due);
    rd_kafka_resume_partitions(rk_.get(), list.get());
}

bool Consumer::is_paused(const char* topic, int32_t partition) const {
    for (const auto& p : paused_)
        if (p.tp.partition == partition && p.tp.topic == topic) return true;
    return false;
}

void Consumer::on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts,
                            void* opaque) {
    static_cast<Consumer*>(static_cast<detail::ClientContext*>(opaque)->owner)->rebalance(err, parts);
}

void Consumer::rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
    rebalances_->inc();
    std::vector<TopicPartition> changed = detail::from_list(parts);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (detail::ErrorPtr e{rd_kafka_incremental_assign(rk_.get(), parts)})
            logger.error("incremental assign failed", {{"group", options_.group_id}, {"error", rd_kafka_error_string(e.get())}});
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
    }

    // Partitions waiting for a retry are given up unpaused, with their offsets unstored.
    std::vector<TopicPartition> resume;
    std::erase_if(paused_, [&](const Paused& p) {
        bool gone = !revoke || std::find(changed.begin(), changed.end(), p.tp) != changed.end();
        if (gone) resume.push_back(p.tp);
        return gone;
    });
    if (!resume.empty()) rd_kafka_resume_partitions(rk_.get(), detail::to_list(resume).get());

    if (!lost) commit_sync("revoke");
    call_hook(options_.on_revoked, changed, "on_revoked");
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

void Consumer::commit_sync(const char* why) {
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
    while (!rd_kafka_consumer_closed(rk_.get())) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
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
