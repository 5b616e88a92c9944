// The conversation stage: history, conversations, context (see conversation_stage.h).
#include "pipeline/history/conversation_stage.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include "envelope/envelope.h"
#include "kafka/dead_letter.h"
#include "kafka/log_reader.h"
#include "pipeline/history/history_commands.h"
#include "pipeline/history/customer_state.h"
#include "pipeline/history/reply_channel.h"
#include "log/log.h"

namespace omnibus::pipeline::history {
namespace {

// When a reply or hand-off command happened, for the hand-off clock: the time it claims, or
// when it reached Kafka if that is later. A helpdesk whose clock lags (or that copies an old
// time) would otherwise hand over a conversation that is already idle-expired; the record's
// timestamp is in the log, so a replay computes the same.
envelope::Timestamp handoff_time(envelope::Timestamp claimed, const kafka::ConsumedRecord& rec) {
    if (rec.timestamp_ms <= 0) return claimed;
    return std::max(claimed, envelope::Timestamp(std::chrono::milliseconds(rec.timestamp_ms)));
}

constexpr log::Logger logger{"conversation"};

// env.context: the customer's last entries before `before_key`, within the history settings.
void fill_context(envelope::Envelope& env, const HistoryStore& store, std::string_view customer,
                  std::string_view before_key, const HistorySettings& h) {
    env.context.clear();
    store.recent_each(customer, before_key, h.context_messages, h.context_bytes, [&](const HistoryEntry& e) {
        envelope::ContextEntry& c = env.context.emplace_back();
        c.id = e.id;
        c.direction = e.direction;
        c.channel = e.channel_name;
        c.text = e.text;
        c.at = envelope::Timestamp(std::chrono::milliseconds(e.at_ms));
        c.author = e.author;
    });
}

std::int64_t wall_ms() { return envelope::now_ms().time_since_epoch().count(); }

constexpr std::size_t kPurgeChunk = 10000;  // history entries a purge scans per hold of a partition

}  // namespace

// One assigned partition: its store and the work in flight on it.
struct ConversationStage::Partition {
    int number = 0;
    std::unique_ptr<HistoryStore> store;
    std::atomic<std::int64_t> changelog_next{0};  // offset after the newest acknowledged changelog record
    std::atomic<int> in_flight{0};                // records and tombstones not acknowledged yet
    std::mutex mu;                                // with cv: waiting for in_flight == 0
    std::condition_variable cv;
    std::mutex purge_mu;  // a purge pass and the close do not overlap
    bool closed = false;  // guarded by purge_mu

    void begin() { in_flight.fetch_add(1); }
    void finish() {
        if (in_flight.fetch_sub(1) == 1) {
            std::lock_guard lock(mu);
            cv.notify_all();
        }
    }
    void acknowledged(std::int64_t offset) {
        std::int64_t next = offset + 1, cur = changelog_next.load();
        while (cur < next && !changelog_next.compare_exchange_weak(cur, next)) {
        }
    }
    bool wait_idle(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, timeout, [this] { return in_flight.load() == 0; });
    }
};

ConversationStage::ConversationStage(const kafka::KafkaSettings& settings, ConversationStageOptions options,
                                     kafka::Producer& producer, metrics::Registry& metrics)
    : settings_(settings),
      options_(std::move(options)),
      producer_(producer),
      out_(options_.transactional_producer ? *options_.transactional_producer : producer),
      metrics_(metrics) {
    if (!options_.customer) throw std::invalid_argument("conversation stage: customer lookup missing");
    processed_ = &metrics.counter("omnibus_conversation_messages_total", "Messages added to a history and emitted");
    replies_ = &metrics.counter("omnibus_conversation_replies_total",
                                "Replies added to a history and handed to the delivery topic");
    routed_ai_ = &metrics.counter("omnibus_routed_messages_total", "Inbound messages routed, by outbox",
                                  {{"target", "ai"}});
    routed_human_ = &metrics.counter("omnibus_routed_messages_total", "Inbound messages routed, by outbox",
                                     {{"target", "human"}});
    handoffs_ = &metrics.counter("omnibus_conversation_handoffs_total",
                                 "Take-overs, releases and escalations of conversations between the AI and humans");
    if (!options_.router) options_.router = route::Router::builtin();
    duplicates_ = &metrics.counter("omnibus_conversation_duplicates_total",
                                   "Messages already in the history (reprocessed): nothing done again");
    forwarded_ = &metrics.counter("omnibus_conversation_forwarded_total",
                                  "Messages of a merged customer forwarded to the survivor");
    dead_letters_ = &metrics.counter("omnibus_conversation_dead_letters_total",
                                     "Records the conversation stage could not process, sent to the dead-letter topic");
    output_failures_ = &metrics.counter("omnibus_conversation_output_failures_total",
                                        "Emits or changelog writes Kafka did not take; the record is handed out again");
    restored_ = &metrics.counter("omnibus_history_restored_records_total", "Changelog records applied while restoring");
    purged_ = &metrics.counter("omnibus_history_purged_total", "History entries removed for retention");
    moved_ = &metrics.counter("omnibus_history_moved_total", "History entries sent to a surviving customer after a merge");
    imported_ = &metrics.counter("omnibus_history_imported_total", "History entries received from a merged customer");
    erased_ = &metrics.counter("omnibus_history_erased_total", "History entries and markers removed by an erasure");

    if (options_.history.cache_bytes > 0) {
        cache_ = std::make_shared<TailCache>(options_.history.context_messages, options_.history.context_bytes,
                                             options_.history.cache_bytes);
        cache_->count_into({&metrics.counter("omnibus_history_cache_hits_total",
                                             "History reads of a customer whose newest entries were in memory"),
                            &metrics.counter("omnibus_history_cache_misses_total",
                                             "History reads that loaded a customer's newest entries from the store"),
                            &metrics.counter("omnibus_history_cache_evictions_total",
                                             "Customers' newest entries dropped from memory for history.cache_bytes")});
        metrics.gauge_fn("omnibus_history_cache_bytes", "Memory held by the newest entries of recently active customers",
                         {}, [cache = std::weak_ptr<TailCache>(cache_)] {
                             auto c = cache.lock();
                             return c ? static_cast<double>(c->stats().bytes) : 0.0;
                         });
    }

    purge_thread_ = std::thread([this] { purge_loop(); });

    kafka::ConsumerOptions co;
    co.group_id = options_.group_id;
    co.topics = {options_.input_topic};
    co.max_in_flight = options_.max_in_flight;
    co.async_handler = [this](const kafka::ConsumedRecord& rec, kafka::Completion done) {
        on_record(rec, std::move(done));
    };
    co.on_assigned = [this](const std::vector<kafka::TopicPartition>& parts) { on_assigned(parts); };
    co.on_revoked = [this](const std::vector<kafka::TopicPartition>& parts) { on_revoked(parts); };
    if (options_.transactional_producer) {
        co.transactional_producer = options_.transactional_producer;
        co.transaction_interval = options_.transaction_interval;
        co.on_aborted = [this](const std::vector<kafka::TopicPartition>& parts) { on_aborted(parts); };
    }
    consumer_ = std::make_unique<kafka::Consumer>(settings_, std::move(co), metrics_);
}

ConversationStage::~ConversationStage() { stop(); }

void ConversationStage::stop() {
    {
        std::lock_guard lock(purge_mu_);
        if (stopping_) return;
        stopping_ = true;
    }
    purge_cv_.notify_all();
    if (purge_thread_.joinable()) purge_thread_.join();
    if (consumer_) consumer_->stop();  // revokes every partition: checkpoints written
}

bool ConversationStage::has_assignment() const { return consumer_ && consumer_->has_assignment(); }
bool ConversationStage::failed() const {
    return options_.transactional_producer && consumer_ && consumer_->fatal();
}

std::vector<int> ConversationStage::partitions() const {
    std::lock_guard lock(stores_mu_);
    std::vector<int> out;
    for (const auto& [p, _] : stores_) out.push_back(p);
    return out;
}

std::shared_ptr<ConversationStage::Partition> ConversationStage::partition(int p) const {
    std::lock_guard lock(stores_mu_);
    auto it = stores_.find(p);
    return it == stores_.end() ? nullptr : it->second;
}

void ConversationStage::on_assigned(const std::vector<kafka::TopicPartition>& parts) {
    for (const auto& tp : parts) {
        if (tp.topic != options_.input_topic) continue;
        auto part = std::make_shared<Partition>();
        part->number = tp.partition;
        const std::string path = options_.store_dir + "/" + std::to_string(tp.partition);
        try {
            part->store = std::make_unique<HistoryStore>(path, cache_);
        } catch (const std::exception& e) {
            logger.error("history store cannot be opened; the partition waits", {{"partition", tp.partition},
                                                                                 {"error", e.what()}});
            continue;  // its records are abandoned until a later assignment opens it
        }
        HistoryStore& store = *part->store;
        auto cp = store.checkpoint();
        std::int64_t start = kafka::LogReader::kBeginning;
        if (cp) {
            start = *cp;
        } else {
            store.wipe();  // not closed cleanly (or new): only the changelog is trusted
        }
        store.clear_checkpoint();

        std::int64_t applied = 0;
        kafka::LogReaderOptions ro;
        ro.topic = options_.changelog_topic;
        ro.partition = tp.partition;
        ro.start_offset = start;
        ro.on_records = [&](std::vector<kafka::LogRecord>& records) {
            std::vector<Change> changes;
            changes.reserve(records.size());
            for (auto& r : records)
                changes.push_back({std::move(r.record.key),
                                   r.tombstone ? std::nullopt : std::optional<std::string>(std::move(r.record.value))});
            store.apply_changelog(changes);
            applied += static_cast<std::int64_t>(changes.size());
        };
        ro.on_gap = [&](std::int64_t requested, std::int64_t log_start) {
            logger.warn("history changelog does not hold the checkpoint; rebuilding the store from what it holds",
                        {{"partition", tp.partition}, {"requested", requested}, {"log_start", log_start}});
            store.wipe();
        };
        const auto t0 = std::chrono::steady_clock::now();
        bool ok = false;
        {
            kafka::LogReader reader(settings_, metrics_, std::move(ro));
            ok = reader.wait_caught_up(options_.restore_timeout);
            reader.stop();
            part->changelog_next = reader.position();
        }
        restored_->inc(static_cast<double>(applied));
        if (!ok) {
            logger.error("history restore did not finish; the partition waits for its next assignment",
                         {{"partition", tp.partition}, {"applied", applied}});
            continue;
        }
        logger.info("history restored",
                    {{"partition", tp.partition},
                     {"from", cp ? std::to_string(*cp) : std::string("beginning")},
                     {"records", applied},
                     {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}});
        std::lock_guard lock(stores_mu_);
        stores_[tp.partition] = std::move(part);
    }
    if (options_.on_partitions_changed) options_.on_partitions_changed(partitions());
}

void ConversationStage::on_revoked(const std::vector<kafka::TopicPartition>& parts) {
    close_partitions(parts, true);
    if (options_.on_partitions_changed) options_.on_partitions_changed(partitions());
}

void ConversationStage::on_aborted(const std::vector<kafka::TopicPartition>& parts) {
    // The stores hold what the aborted transaction wrote. Closed without a checkpoint, each is
    // wiped and rebuilt from its changelog, which shows a read_committed reader only what was
    // committed; the consumer then hands the partitions' records out again from the last commit.
    // When stopping they are only closed: whoever opens them next rebuilds them.
    close_partitions(parts, false);
    bool stopping = false;
    {
        std::lock_guard lock(purge_mu_);
        stopping = stopping_;
    }
    if (stopping) {
        if (options_.on_partitions_changed) options_.on_partitions_changed(partitions());
        return;
    }
    on_assigned(parts);
}

void ConversationStage::close_partitions(const std::vector<kafka::TopicPartition>& parts, bool checkpoint) {
    for (const auto& tp : parts) {
        if (tp.topic != options_.input_topic) continue;
        std::shared_ptr<Partition> part;
        {
            std::lock_guard lock(stores_mu_);
            auto it = stores_.find(tp.partition);
            if (it == stores_.end()) continue;
            part = std::move(it->second);
            stores_.erase(it);
        }
        std::lock_guard purge(part->purge_mu);
        part->closed = true;
        if (!checkpoint) {
            part->store.reset();  // no checkpoint: wiped and restored when opened again
            continue;
        }
        if (!part->wait_idle(settings_.close_timeout)) {
            // No checkpoint: whoever opens this store next wipes it and restores from the changelog.
            logger.error("history partition revoked with work in flight; its store will be restored next time",
                         {{"partition", tp.partition}, {"in_flight", part->in_flight.load()}});
            continue;
        }
        try {
            part->store->write_checkpoint(part->changelog_next.load());
            logger.info("history checkpoint written",
                        {{"partition", tp.partition}, {"changelog_offset", part->changelog_next.load()}});
        } catch (const std::exception& e) {
            logger.error("history checkpoint not written", {{"partition", tp.partition}, {"error", e.what()}});
        }
        part->store.reset();  // closed: the directory may be opened again at the next assignment
    }
}

void ConversationStage::dead_letter(const kafka::ConsumedRecord& rec, std::string_view code, std::string reason,
                                    std::shared_ptr<kafka::Completion> done) {
    dead_letters_->inc();
    logger.warn("record dead-lettered", {{"code", code}, {"reason", reason}, {"partition", rec.partition},
                                         {"offset", static_cast<long long>(rec.offset)}});
    out_.produce(kafka::dead_letter(rec, options_.deadletter_topic, code, std::move(reason)),
                 [done](const kafka::DeliveryResult& r) { done->settle(r.ok()); });
}

kafka::Record ConversationStage::changelog_record(Change c, int partition) const {
    kafka::Record r;
    r.topic = options_.changelog_topic;
    r.key = std::move(c.key);
    if (c.value) r.value = std::move(*c.value);
    else r.tombstone = true;
    r.partition = partition;
    return r;
}

void ConversationStage::produce_all(std::vector<kafka::Record> records, const std::shared_ptr<Partition>& part,
                                    std::function<void(bool ok)> then) {
    if (records.empty()) return then(true);
    struct Join {
        std::atomic<std::size_t> left;
        std::atomic<bool> failed{false};
        std::function<void(bool)> then;
    };
    auto join = std::make_shared<Join>();
    join->left = records.size();
    join->then = std::move(then);
    const std::string& changelog = options_.changelog_topic;
    for (auto& r : records) {
        const bool is_changelog = r.topic == changelog;
        part->begin();
        out_.produce(std::move(r), [join, part, is_changelog](const kafka::DeliveryResult& d) {
            if (!d.ok()) join->failed = true;
            else if (is_changelog) part->acknowledged(d.offset);
            if (join->left.fetch_sub(1) == 1) join->then(!join->failed.load());
            part->finish();
        });
    }
}

void ConversationStage::on_record(const kafka::ConsumedRecord& rec, kafka::Completion done) {
    auto shared_done = std::make_shared<kafka::Completion>(std::move(done));
    auto part = partition(rec.partition);
    if (!part) {
        shared_done->abandon();  // not restored here: handed out again, or to the next owner
        return;
    }
    if (rec.record.key.empty()) return dead_letter(rec, "missing_key", "record without a customer id key", shared_done);
    if (auto attrs = envelope::read_attribute_views(rec.record); attrs.ok()) {
        if (attrs->type == kMoveType) return on_move(rec, part, shared_done);
        if (attrs->type == kImportType) return on_import(rec, part, shared_done);
        if (attrs->type == kEraseType) return on_erase(rec, part, shared_done);
        if (attrs->type == kTakeoverType || attrs->type == kReleaseType) return on_handoff(rec, part, shared_done);
    }
    envelope::DecodeOptions dopt;
    dopt.channel_optional = true;  // replies may leave it to this stage
    auto decoded = envelope::decode(rec.record, dopt);
    if (!decoded.ok())
        return dead_letter(rec, envelope::error_code_name(decoded.error().code), decoded.error().to_string(),
                           shared_done);
    envelope::Envelope env = std::move(decoded).value();
    if (env.direction == envelope::Direction::outbound) return on_reply(rec, part, std::move(env), shared_done);
    if (env.channel.name.empty())
        return dead_letter(rec, "missing_field", "channel: required on an inbound message", shared_done);

    const std::string& customer = rec.record.key;
    std::vector<kafka::Record> asks;  // history.move for aliases not asked yet
    std::vector<Change> markers;
    route::CustomerAttributes attributes;
    bool known_customer = false;
    if (auto ref = options_.customer(customer)) {
        known_customer = true;
        attributes = std::move(ref->attributes);
        if (ref->id != customer) {
            // Merged away: the survivor's partition keeps the history now.
            forwarded_->inc();
            env.customer_id = ref->id;
            kafka::Record fwd = envelope::encode(env, ref->id);
            fwd.topic = options_.input_topic;
            out_.produce(std::move(fwd), [shared_done](const kafka::DeliveryResult& r) {
                shared_done->settle(r.ok());
            });
            return;
        }
        for (const auto& alias : ref->aliases) {
            if (part->store->absorbed(customer, alias)) continue;
            asks.push_back(move_record(options_.input_topic, MoveCommand{alias, customer}, options_.source));
            markers.push_back(part->store->mark_absorbed(customer, alias));
        }
    }

    HistoryStore& store = *part->store;
    const std::int64_t at = env.received_at.time_since_epoch().count();
    std::string hkey = entry_key(customer, at, env.id);
    const bool seen = store.find(hkey).has_value();
    if (seen) {
        duplicates_->inc();  // processed and emitted before
        if (asks.empty()) {
            shared_done->done();
            return;
        }
    }
    std::vector<kafka::Record> out;
    std::optional<Change> change;
    std::vector<Change> restore;  // what the store held before, put back when the output fails
    if (!seen) {
        const auto& h = options_.history;
        std::string conversation;
        std::int64_t started = at;
        bool opened = false;
        if (auto last = store.last_conversation(customer); last && at - last->at_ms <= h.conversation_idle.count()) {
            conversation = last->conversation;
            started = last->conversation_started_ms;
        } else {
            conversation = envelope::new_id();
            opened = true;
        }
        fill_context(env, store, customer, hkey, h);
        change = store.put(entry_of(env, customer, conversation, started));
        env.customer_id = customer;
        env.conversation_id = conversation;
        // Classify, then route with the customer's state (who owns the conversation).
        const std::optional<std::string> old_state = store.state(customer);
        CustomerState state;
        if (old_state) {
            if (auto decoded_state = decode_customer_state(*old_state)) state = std::move(*decoded_state);
        }
        const route::Router& router = *options_.router;
        route::HandoffEvent ev;
        ev.kind = opened ? route::HandoffEvent::Kind::new_conversation : route::HandoffEvent::Kind::customer_message;
        ev.at = env.received_at;
        state.handoff = route::apply(std::move(state.handoff), ev, router.handoff_policy());
        if (options_.classify) options_.classify(env, state.language);
        route::RouteContext ctx;
        ctx.conversation = opened ? route::ConversationState::new_ : route::ConversationState::open;
        ctx.handoff = &state.handoff;
        if (known_customer) {
            ctx.customer = &attributes;
            // The profile's `time_zone` attribute (checked when it was set); cctz caches the loads.
            if (auto tz = attributes.find("time_zone"); tz != attributes.end())
                ctx.customer_time_zone = route::load_time_zone(tz->second);
        }
        ctx.now = std::chrono::system_clock::now();
        const route::Decision decision = router.route(env, ctx);
        env.route = decision.to_route();
        if (env.language && !env.language->empty()) state.language = *env.language;
        state.conversation = conversation;
        if (std::string value = encode(state); value != old_state) {  // most messages change nothing
            markers.push_back(store.put_state(customer, std::move(value)));
            restore.push_back(Change{markers.back().key, old_state});
        }
        kafka::Record routed = envelope::encode(env, customer);
        routed.topic = decision.target == envelope::RouteTarget::human ? options_.human_outbox_topic
                                                                        : options_.outbox_topic;
        (decision.target == envelope::RouteTarget::human ? routed_human_ : routed_ai_)->inc();
        out.push_back(std::move(routed));
    }
    for (auto& a : asks) out.push_back(std::move(a));

    emit_then_log(part, std::move(out), std::move(change), std::move(markers), std::move(restore), processed_,
                  shared_done);
}

void ConversationStage::emit_then_log(const std::shared_ptr<Partition>& part, std::vector<kafka::Record> out,
                                      std::optional<Change> change, std::vector<Change> markers,
                                      std::vector<Change> restore, metrics::Counter* processed,
                                      std::shared_ptr<kafka::Completion> shared_done) {
    // First the emit (and the asks), then the changelog: see the top of conversation_stage.h.
    // The writes wait in one shared place: the callbacks below hold it, not copies of it
    // (an entry's value is most of a message).
    struct Pending {
        std::optional<Change> change;
        std::vector<Change> markers;
        std::vector<Change> restore;  // earlier values of keys that were overwritten
    };
    auto pending = std::make_shared<Pending>(Pending{std::move(change), std::move(markers), std::move(restore)});
    metrics::Counter* failures = output_failures_;
    auto rollback = [part, pending] {
        if (pending->change) part->store->remove(pending->change->key);
        for (const auto& m : pending->markers) part->store->remove(m.key);
        part->store->apply_changelog(pending->restore);
    };
    if (options_.transactional_producer) {
        // In a transaction the emit and its changelog records become visible together or not
        // at all: one step, no second round trip. The changelog records take the values; the
        // keys stay for a rollback.
        if (pending->change)
            out.push_back(changelog_record(Change{pending->change->key, std::move(pending->change->value)}, part->number));
        for (auto& m : pending->markers) out.push_back(changelog_record(Change{m.key, std::move(m.value)}, part->number));
        const bool counts = pending->change.has_value() && processed;
        produce_all(std::move(out), part, [rollback, failures, processed, counts, shared_done](bool ok) {
            if (ok) {
                if (counts) processed->inc();
                shared_done->done();
                return;
            }
            failures->inc();
            logger.warn("routed message or its changelog record not taken by Kafka; the transaction is aborted", {});
            rollback();
            shared_done->abandon();
        });
        return;
    }
    produce_all(std::move(out), part, [this, part, pending, rollback, failures, processed, shared_done](bool ok) {
        if (!ok) {
            failures->inc();
            logger.warn("routed message not taken by Kafka; handed out again", {});
            rollback();
            shared_done->abandon();
            return;
        }
        // The changelog records take the values; the keys stay for a rollback.
        auto logged_record = [&](Change& c) { return changelog_record(Change{c.key, std::move(c.value)}, part->number); };
        std::vector<kafka::Record> cl;
        cl.reserve((pending->change ? 1 : 0) + pending->markers.size());
        if (pending->change) cl.push_back(logged_record(*pending->change));
        for (auto& m : pending->markers) cl.push_back(logged_record(m));
        const bool counts = pending->change.has_value() && processed;
        produce_all(std::move(cl), part, [rollback, failures, processed, counts, shared_done](bool logged) {
            if (logged) {
                if (counts) processed->inc();
                shared_done->done();
            } else {
                // Emitted but not on the changelog: handed out again, it is emitted again with the same id.
                failures->inc();
                logger.warn("history changelog write not taken by Kafka; handed out again", {});
                rollback();
                shared_done->abandon();
            }
        });
    });
}

void ConversationStage::on_reply(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                                 envelope::Envelope env, std::shared_ptr<kafka::Completion> done) {
    const std::string& customer = rec.record.key;
    if (auto ref = options_.customer(customer); ref && ref->id != customer) {
        forwarded_->inc();  // merged away since the intake re-keyed it
        kafka::Record fwd = rec.record;
        fwd.key = ref->id;
        fwd.topic = options_.input_topic;
        fwd.partition = -1;
        out_.produce(std::move(fwd), [done](const kafka::DeliveryResult& r) { done->settle(r.ok()); });
        return;
    }
    HistoryStore& store = *part->store;
    const std::int64_t at = env.received_at.time_since_epoch().count();
    std::string hkey = entry_key(customer, at, env.id);
    if (store.find(hkey)) {
        duplicates_->inc();  // appended and handed to delivery before
        done->done();
        return;
    }
    MessageQuery q;
    q.limit = 200;  // the newest inbound message of each channel is among them in practice
    const MessagePage page = store.messages(customer, q);
    if (page.entries.empty())
        return dead_letter(rec, "unknown_customer", "no history here for customer " + customer, done);
    std::optional<std::string_view> named_recipient;
    if (env.recipient) named_recipient = env.recipient->id;
    ReplyChoice choice =
        choose_reply_channel(page.entries, env.channel.type, env.channel.name, named_recipient, wall_ms());
    if (!choice.target) return dead_letter(rec, "no_channel", choice.problem, done);
    const ReplyTarget& t = *choice.target;

    // The conversation: the one it names, else the customer's current one (a reply after the
    // idle time still belongs to the conversation it answers).
    const HistoryEntry& newest = page.entries.front();
    std::string conversation = newest.conversation;
    std::int64_t started = newest.conversation_started_ms;
    if (env.conversation_id && *env.conversation_id != newest.conversation) {
        conversation = *env.conversation_id;
        started = at;
        for (const HistoryEntry& e : page.entries)
            if (e.conversation == conversation) started = e.conversation_started_ms;
    }
    env.channel = envelope::Channel{t.channel_type, t.channel_name};
    if (!env.recipient) env.recipient.emplace();
    env.recipient->id = t.recipient;
    env.customer_id = customer;
    env.conversation_id = conversation;
    if (!t.window_open) {
        if (!env.route) env.route.emplace();
        env.route->flags.push_back("outside_24h_window");
    }
    // Who owns the conversation now: a human reply makes it the human's; an AI reply flagged
    // cannot_help escalates it (and the human outbox gets the reply with the conversation, so
    // an agent picks it up); resolved resets the AI's turn count.
    const std::optional<std::string> old_state = store.state(customer);
    CustomerState state;
    if (old_state) {
        if (auto decoded_state = decode_customer_state(*old_state)) state = std::move(*decoded_state);
    }
    auto has_flag = [&](std::string_view f) {
        if (!env.route) return false;
        for (const auto& x : env.route->flags)
            if (x == f) return true;
        return false;
    };
    route::HandoffEvent ev;
    ev.at = handoff_time(env.received_at, rec);
    if (env.sender.id.starts_with("agent:")) {
        ev.kind = route::HandoffEvent::Kind::human_reply;
        ev.agent = env.sender.id;
    } else {
        ev.kind = route::HandoffEvent::Kind::ai_reply;
        ev.cannot_help = has_flag("cannot_help");
        ev.resolved = has_flag("resolved");
    }
    const route::Owner owner_before = state.handoff.owner;
    state.handoff = route::apply(std::move(state.handoff), ev, options_.router->handoff_policy());
    const bool escalated = ev.cannot_help && owner_before == route::Owner::ai && state.handoff.owner == route::Owner::human;
    state.conversation = conversation;

    std::vector<kafka::Record> records;
    if (escalated) {
        envelope::Envelope copy = env;
        copy.route = envelope::Route{envelope::RouteTarget::human, "handoff:cannot_help", 1, std::nullopt, {"escalated"}};
        fill_context(copy, store, customer, hkey, options_.history);
        kafka::Record h = envelope::encode(copy, customer);
        h.topic = options_.human_outbox_topic;
        records.push_back(std::move(h));
        handoffs_->inc();
    }
    std::optional<Change> change = store.put(entry_of(env, customer, conversation, started));
    std::vector<Change> markers{store.put_state(customer, encode(state))};
    std::vector<Change> restore{Change{markers.back().key, old_state}};
    kafka::Record out = envelope::encode(env, customer);
    out.topic = options_.delivery_topic;
    records.push_back(std::move(out));
    emit_then_log(part, std::move(records), std::move(change), std::move(markers), std::move(restore), replies_,
                  std::move(done));
}

void ConversationStage::on_handoff(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                                   std::shared_ptr<kafka::Completion> done) {
    auto attrs = envelope::read_attribute_views(rec.record);
    auto cmd = decode_handoff(rec.record.value, attrs.ok() && attrs->type == kTakeoverType);
    if (!cmd.ok()) return dead_letter(rec, "bad_command", cmd.error().to_string(), done);
    const std::string& customer = rec.record.key;
    if (auto ref = options_.customer(customer); ref && ref->id != customer) {
        forwarded_->inc();
        kafka::Record fwd = rec.record;
        fwd.key = ref->id;
        fwd.topic = options_.input_topic;
        fwd.partition = -1;
        out_.produce(std::move(fwd), [done](const kafka::DeliveryResult& r) { done->settle(r.ok()); });
        return;
    }
    HistoryStore& store = *part->store;
    if (!store.holds(customer))
        return dead_letter(rec, "unknown_customer", "no history here for customer " + customer, done);
    const std::optional<std::string> old_state = store.state(customer);
    CustomerState state;
    if (old_state) {
        if (auto decoded_state = decode_customer_state(*old_state)) state = std::move(*decoded_state);
    }
    route::HandoffEvent ev;
    ev.kind = cmd->takeover ? route::HandoffEvent::Kind::take_over : route::HandoffEvent::Kind::release;
    ev.at = handoff_time(attrs.ok() ? attrs->time : envelope::now_ms(), rec);
    ev.agent = "agent:" + cmd->agent;
    state.handoff = route::apply(std::move(state.handoff), ev, options_.router->handoff_policy());
    handoffs_->inc();
    std::vector<Change> markers{store.put_state(customer, encode(state))};
    std::vector<Change> restore{Change{markers.back().key, old_state}};
    emit_then_log(part, {}, std::nullopt, std::move(markers), std::move(restore), nullptr, std::move(done));
}

void ConversationStage::on_move(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                                std::shared_ptr<kafka::Completion> done) {
    auto cmd = decode_move(rec.record.value);
    if (!cmd.ok()) return dead_letter(rec, envelope::error_code_name(cmd.error().code), cmd.error().to_string(), done);
    if (cmd->from != rec.record.key) return dead_letter(rec, "bad_key", "a move is keyed by the customer it moves", done);
    auto entries = part->store->all(cmd->from);
    if (entries.empty()) {
        done->done();  // nothing (left) here: moved before, or never had history
        return;
    }
    const std::string from = cmd->from, into = cmd->into;
    auto imports = import_records(options_.input_topic, from, into, entries, options_.source);
    metrics::Counter* moved = moved_;
    const std::size_t n = entries.size();
    // Imports first; only once they are on Kafka do the entries go here (a crash in between
    // moves them again: the import is idempotent).
    produce_all(std::move(imports), part, [=, this](bool ok) {
        if (!ok) {
            done->abandon();
            return;
        }
        std::vector<kafka::Record> tombstones;
        for (auto& c : part->store->erase_customer(from)) tombstones.push_back(changelog_record(std::move(c), part->number));
        produce_all(std::move(tombstones), part, [=](bool logged) {
            if (!logged) {
                done->abandon();  // handed out again: the entries are gone here, the import is on its way
                return;
            }
            moved->inc(static_cast<double>(n));
            logger.info("history moved to the surviving customer", {{"entries", n}});
            done->done();
        });
    });
}

void ConversationStage::on_import(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                                  std::shared_ptr<kafka::Completion> done) {
    auto cmd = decode_import(rec.record.value);
    if (!cmd.ok()) return dead_letter(rec, envelope::error_code_name(cmd.error().code), cmd.error().to_string(), done);
    if (cmd->customer != rec.record.key)
        return dead_letter(rec, "bad_key", "an import is keyed by the customer it imports into", done);
    if (auto ref = options_.customer(cmd->customer); ref && ref->id != cmd->customer) {
        // The survivor was merged again meanwhile: the entries go on to its survivor.
        forwarded_->inc();
        auto again = import_records(options_.input_topic, cmd->from, ref->id, cmd->entries, options_.source);
        produce_all(std::move(again), part, [done](bool ok) {
            done->settle(ok);
        });
        return;
    }
    std::vector<kafka::Record> cl;
    for (const auto& e : cmd->entries)
        if (!part->store->find(entry_key(e.customer, e.at_ms, e.id)))
            cl.push_back(changelog_record(part->store->put(e), part->number));
    metrics::Counter* imported = imported_;
    const std::size_t n = cl.size();
    produce_all(std::move(cl), part, [=](bool ok) {
        if (!ok) {
            done->abandon();  // stored here already; handed out again it finds them and writes nothing twice
            return;
        }
        imported->inc(static_cast<double>(n));
        done->done();
    });
}

void ConversationStage::on_erase(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                                 std::shared_ptr<kafka::Completion> done) {
    auto cmd = decode_erase(rec.record.value);
    if (!cmd.ok()) return dead_letter(rec, envelope::error_code_name(cmd.error().code), cmd.error().to_string(), done);
    if (cmd->customer != rec.record.key)
        return dead_letter(rec, "bad_key", "an erasure is keyed by the customer it erases", done);
    std::vector<kafka::Record> tombstones;
    for (auto& c : part->store->erase_customer(cmd->customer))
        tombstones.push_back(changelog_record(std::move(c), part->number));
    // A right to erasure: the texts leave the store's files too, not only its answers.
    try {
        part->store->compact_customer(cmd->customer);
    } catch (const std::exception& e) {
        logger.warn("erased history not compacted; RocksDB drops it at a later compaction", {{"error", e.what()}});
    }
    metrics::Counter* erased = erased_;
    const std::size_t n = tombstones.size();
    produce_all(std::move(tombstones), part, [=](bool ok) {
        if (!ok) {
            done->abandon();
            return;
        }
        erased->inc(static_cast<double>(n));
        logger.info("customer history erased", {{"entries", n}});
        done->done();
    });
}

int ConversationStage::partition_of(std::string_view customer) const {
    // librdkafka's default partitioner (consistent_random): CRC-32 of the key.
    return rd_kafka_msg_partitioner_consistent_random(nullptr, customer.data(), customer.size(),
                                                      std::max(options_.partition_count, 1), nullptr, nullptr);
}

bool ConversationStage::holds_partition(int partition) const {
    std::lock_guard lock(stores_mu_);
    return stores_.count(partition) > 0;
}

bool ConversationStage::erase_history(const std::vector<std::string>& customers, std::chrono::milliseconds wait) {
    struct Acks {
        std::mutex mu;
        std::condition_variable cv;
        std::size_t left = 0;
        bool failed = false;
    };
    auto acks = std::make_shared<Acks>();
    acks->left = customers.size();
    for (const auto& c : customers)
        producer_.produce(erase_record(options_.input_topic, EraseCommand{c}, options_.source),
                          [acks](const kafka::DeliveryResult& r) {
                              std::lock_guard lock(acks->mu);
                              if (!r.ok()) acks->failed = true;
                              if (--acks->left == 0) acks->cv.notify_all();
                          });
    std::unique_lock lock(acks->mu);
    return acks->cv.wait_for(lock, wait, [&] { return acks->left == 0; }) && !acks->failed;
}

void ConversationStage::move_history(const std::string& from, const std::string& into) {
    producer_.produce(move_record(options_.input_topic, MoveCommand{from, into}, options_.source),
                      [](const kafka::DeliveryResult& r) {
                          if (!r.ok())
                              logger.warn("history move not written; the survivor's next message asks again",
                                          {{"error", r.message}});
                      });
}

std::vector<std::shared_ptr<ConversationStage::Partition>> ConversationStage::open_partitions() const {
    std::lock_guard lock(stores_mu_);
    std::vector<std::shared_ptr<Partition>> parts;
    parts.reserve(stores_.size());
    for (const auto& [_, p] : stores_) parts.push_back(p);
    return parts;
}

const HistoryStore* ConversationStage::store_holding(std::string_view customer,
                                                      const std::vector<std::shared_ptr<Partition>>& parts) const {
    for (const auto& p : parts)
        if (p->store && p->store->holds(customer)) return p->store.get();
    return nullptr;
}

std::optional<MessagePage> ConversationStage::messages(std::string_view customer, const MessageQuery& q) const {
    auto parts = open_partitions();  // keeps the stores open while they are read
    if (const HistoryStore* store = store_holding(customer, parts)) return store->messages(customer, q);
    return std::nullopt;
}

std::optional<std::vector<ConversationSummary>> ConversationStage::conversations(std::string_view customer) const {
    auto parts = open_partitions();
    if (const HistoryStore* store = store_holding(customer, parts)) return store->conversations(customer);
    return std::nullopt;
}

std::size_t ConversationStage::purge_now() {
    auto parts = open_partitions();
    const std::int64_t cutoff = wall_ms() - options_.history.retention.count();
    std::size_t total = 0;
    for (const auto& part : parts) {
        // One chunk (10,000 entries scanned) per hold of purge_mu, so a revocation waits for a
        // chunk, not for a pass over the whole partition (a year of history is millions of
        // entries). Between chunks the tombstones in flight drain below a chunk's worth, so a
        // first pass over a long history does not fill the producer's queue (100,000 records,
        // shared with the stage's output) and make the stage's own records fail.
        std::string cursor;
        do {
            {
                std::lock_guard lock(part->purge_mu);
                if (part->closed) break;
                auto changes = part->store->purge_before(cutoff, cursor, kPurgeChunk);
                for (auto& c : changes) {
                    kafka::Record t;
                    t.topic = options_.changelog_topic;
                    t.key = std::move(c.key);
                    t.tombstone = true;
                    t.partition = part->number;
                    part->begin();
                    producer_.produce(std::move(t), [part](const kafka::DeliveryResult& r) {
                        if (r.ok()) part->acknowledged(r.offset);
                        // A lost tombstone leaves the entry on the changelog: a restore brings it
                        // back and the next pass removes it again.
                        part->finish();
                    });
                }
                total += changes.size();
            }
            // Every record in flight ends within kafka.message_timeout (acknowledged or failed).
            while (!cursor.empty() && part->in_flight.load() > static_cast<int>(kPurgeChunk)) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                std::lock_guard lock(part->purge_mu);
                if (part->closed) break;
            }
        } while (!cursor.empty());
    }
    purged_->inc(static_cast<double>(total));
    if (total) logger.info("history purged", {{"entries", total}, {"older_than_ms", cutoff}});
    return total;
}

void ConversationStage::purge_loop() {
    std::unique_lock lock(purge_mu_);
    while (!stopping_) {
        if (purge_cv_.wait_for(lock, options_.purge_interval, [this] { return stopping_; })) break;
        lock.unlock();
        try {
            purge_now();
        } catch (const std::exception& e) {
            logger.error("history purge failed", {{"error", e.what()}});
        }
        lock.lock();
    }
}

}  // namespace omnibus::pipeline::history
