// The identity log member of an instance (see identity_service.h).
#include "pipeline/identity/identity_service.h"

#include <rapidjson/stringbuffer.h>

#include "envelope/cloudevent.h"
#include "envelope/id.h"
#include "envelope/json.h"
#include "log/log.h"

namespace omnibus::pipeline::identity {
namespace {

constexpr log::Logger logger{"identity"};
log::Throttle log_not_appended;  // per request while Kafka is out (on the edge workers)

std::string type_of(Op op) { return "com.omnibus.identity." + std::string(op_name(op)); }

std::string source_of(std::string_view origin) { return "/omnibus/instances/" + std::string(origin); }

std::int64_t wall_ms() { return envelope::now_ms().time_since_epoch().count(); }

kafka::Record tombstone(const std::string& topic, std::string key) {
    kafka::Record r;
    r.topic = topic;
    r.key = std::move(key);
    r.tombstone = true;
    return r;
}

kafka::Record event(const std::string& topic, std::string_view type, std::string_view origin, std::string key,
                    std::string body) {
    envelope::CloudEvent ce{envelope::new_id(), source_of(origin), std::string(type), envelope::now_ms(), std::nullopt,
                            std::nullopt};
    kafka::Record r = envelope::to_record(std::move(ce), std::move(key), std::move(body));
    r.topic = topic;
    return r;
}

std::string merge_body(const Merge& m, const Request& cause) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "from");
    json::write_string(w, m.from);
    json::write_key(w, "into");
    json::write_string(w, m.into);
    json::write_key(w, "request");
    json::write_string(w, cause.id);
    json::write_key(w, "op");
    json::write_string(w, op_name(cause.op));
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

std::string erasure_body(const Outcome& o, const Request& cause) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "customer");
    json::write_string(w, o.customer);
    json::write_key(w, "customers");
    w.StartArray();
    for (const auto& c : o.erased_customers) json::write_string(w, c);
    w.EndArray();
    json::write_key(w, "request");
    json::write_string(w, cause.id);
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

// The request in a record of the log; nullopt for tombstones and records this version cannot
// read (every instance skips those alike, so the state stays the same everywhere).
std::optional<Request> decode_record(const kafka::LogRecord& rec, metrics::Counter& skipped) {
    if (rec.tombstone) return std::nullopt;
    auto attrs = envelope::read_attribute_views(rec.record);
    std::string why;
    if (!attrs.ok()) {
        why = attrs.error().to_string();
    } else if (attrs->type.rfind("com.omnibus.identity.", 0) != 0) {
        why = "not an identity request: " + std::string(attrs->type);
    } else if (auto r = decode_request(rec.record.value); !r.ok()) {
        why = r.error().to_string();
    } else if (r->id != attrs->id) {
        why = "ce_id differs from the request id";
    } else {
        return std::move(r).value();
    }
    skipped.inc();
    logger.warn("identity log record skipped", {{"offset", rec.offset}, {"reason", why}});
    return std::nullopt;
}

}  // namespace

IdentityService::IdentityService(const kafka::KafkaSettings& settings, metrics::Registry& metrics,
                                 kafka::Producer& producer, IdentityServiceOptions options)
    : options_(std::move(options)), producer_(producer), store_(options_.store_path) {
    applied_ = &metrics.counter("omnibus_identity_requests_applied_total", "Identity-log requests applied here");
    rejected_ = &metrics.counter("omnibus_identity_requests_rejected_total",
                                 "Identity-log requests that could not apply (changed nothing)");
    skipped_ = &metrics.counter("omnibus_identity_records_skipped_total", "Identity-log records that are not requests");
    merges_ = &metrics.counter("omnibus_identity_merges_total", "Customers merged into an older one");
    offset_gauge_ = &metrics.gauge("omnibus_identity_applied_offset", "Next identity-log offset this instance will apply");

    const std::int64_t last = store_.applied_ms();
    if (store_.next_offset() > 0 && wall_ms() - last > options_.rebuild_after.count()) {
        logger.warn("identity store is older than the log's compaction window; rebuilding it from the log",
                    {{"path", store_.path()}, {"last_applied_ms", last}});
        store_.wipe();
    }
    kafka::LogReaderOptions ro;
    ro.topic = options_.topic;
    ro.partition = 0;
    ro.start_offset = store_.next_offset();
    ro.on_records = [this](std::vector<kafka::LogRecord>& records) { on_records(records); };
    ro.on_gap = [this](std::int64_t requested, std::int64_t log_start) {
        // Records this store never applied are gone: only a rebuild from what is left agrees
        // with the other instances. Reading goes on from the log start; the store must too.
        logger.error("identity log no longer holds the store's next offset; rebuilding the store",
                     {{"requested", requested}, {"log_start", log_start}});
        store_.wipe();
    };
    offset_gauge_->set(static_cast<double>(store_.next_offset()));
    reader_ = std::make_unique<kafka::LogReader>(settings, metrics, std::move(ro));
    logger.info("identity service started",
                {{"store", store_.path()}, {"offset", store_.next_offset()}, {"origin", options_.origin}});
}

IdentityService::~IdentityService() { stop(); }

void IdentityService::stop() {
    if (stopped_.exchange(true)) return;
    if (reader_) reader_->stop();
    fail_waiters("identity service stopped");
}

bool IdentityService::wait_caught_up(std::chrono::milliseconds timeout) { return reader_->wait_caught_up(timeout); }

std::string IdentityService::submit(Request r, Callback done) {
    if (r.id.empty()) r.id = envelope::new_id();
    if (r.at_ms == 0) r.at_ms = wall_ms();
    if (r.origin.empty()) r.origin = options_.origin;
    const std::string id = r.id;
    if (stopped_.load()) {
        Outcome o;
        o.ok = false;
        o.error = "identity service stopped";
        if (done) done(o);
        return id;
    }
    {
        std::lock_guard lock(waiters_mu_);
        waiters_[id] = std::move(done);  // before the produce: the record may apply at once
    }
    envelope::CloudEvent ce{id, source_of(r.origin), type_of(r.op),
                            envelope::Timestamp(std::chrono::milliseconds(r.at_ms)), std::nullopt, std::nullopt};
    kafka::Record rec = envelope::to_record(std::move(ce), request_key(id), encode(r));
    rec.topic = options_.topic;
    producer_.produce(std::move(rec), [this, id](const kafka::DeliveryResult& d) {
        if (d.ok()) return;  // the outcome comes from the log
        Callback cb;
        {
            std::lock_guard lock(waiters_mu_);
            auto it = waiters_.find(id);
            if (it == waiters_.end()) return;
            cb = std::move(it->second);
            waiters_.erase(it);
        }
        std::uint64_t n = 0;
        if (log_not_appended.allow(n))
            logger.warn("identity request not appended", {{"request", id}, {"error", d.message}, {"occurrences", n}});
        Outcome o;
        o.ok = false;
        o.error = "not appended to the identity log: " + d.message;
        if (cb) cb(o);
    });
    return id;
}

void IdentityService::on_records(std::vector<kafka::LogRecord>& records) {
    std::vector<LogEntry> entries;
    entries.reserve(records.size());
    for (const auto& rec : records) entries.push_back({rec.offset, decode_record(rec, *skipped_)});
    auto outcomes = store_.apply(entries, wall_ms());
    if (!entries.empty()) offset_gauge_->set(static_cast<double>(entries.back().offset + 1));
    // Outcomes come in entry order; match them to their requests.
    std::size_t i = 0;
    for (const auto& [offset, outcome] : outcomes) {
        while (i < entries.size() && entries[i].offset != offset) ++i;
        if (i == entries.size()) break;
        after_apply(*entries[i].request, outcome);
    }
}

void IdentityService::after_apply(const Request& r, const Outcome& o) {
    applied_->inc();
    const bool mine = r.origin == options_.origin;
    if (!o.ok) {
        rejected_->inc();
        logger.info("identity request rejected", {{"request", r.id}, {"op", op_name(r.op)}, {"reason", o.error}});
        if (mine) producer_.produce(tombstone(options_.topic, request_key(r.id)), nullptr);
    }
    merges_->inc(o.merges.size());
    if (mine)
        for (const auto& m : o.merges)
            producer_.produce(event(options_.events_topic, envelope::event_type::identity_merge, options_.origin, m.into,
                                    merge_body(m, r)),
                              nullptr);
    if (r.op == Op::erase && o.ok) {
        for (const auto& req : o.tombstone_requests)
            producer_.produce(tombstone(options_.topic, request_key(req)), nullptr);
        if (mine)
            producer_.produce(event(options_.events_topic, envelope::event_type::customer_erasure, options_.origin,
                                    o.customer, erasure_body(o, r)),
                              nullptr);
        if (options_.on_erasure && !o.unlinked.empty()) options_.on_erasure(o.unlinked);
    }
    Callback cb;
    {
        std::lock_guard lock(waiters_mu_);
        auto it = waiters_.find(r.id);
        if (it == waiters_.end()) return;
        cb = std::move(it->second);
        waiters_.erase(it);
    }
    if (cb) cb(o);
}

void IdentityService::fail_waiters(const std::string& why) {
    std::unordered_map<std::string, Callback> waiting;
    {
        std::lock_guard lock(waiters_mu_);
        waiting.swap(waiters_);
    }
    Outcome o;
    o.ok = false;
    o.error = why;
    for (auto& [id, cb] : waiting)
        if (cb) cb(o);
}

}  // namespace omnibus::pipeline::identity
