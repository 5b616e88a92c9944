// IdentityService: an instance's member of the identity log. It keeps the local IdentityStore
// in step with omnibus.identity (every record, in order, from the store's offset), appends
// this instance's requests, and tells each requester the outcome once the request applied
// here, so what a caller learns is exactly what every other instance computes too.
//
// Records on omnibus.identity are CloudEvents (binary mode): ce_type
// com.omnibus.identity.<op>, ce_id = the request id, ce_source /omnibus/instances/<origin>,
// key "r:<request id>", body = the request JSON (identity.h). A record without a value is a
// tombstone. Undecodable records are logged and skipped (every instance skips them alike).
//
// What follows an applied request:
//   - its requester's callback runs with the Outcome (reader thread);
//   - merges caused by this instance's requests → com.omnibus.identity.merge on omnibus.events;
//   - an erasure → every instance writes the tombstones it names (idempotent: whoever comes
//     first, the records go), and the requester writes com.omnibus.customer.erasure; every
//     instance calls on_erasure with the identities the customer had, so what the channels
//     keep locally about them goes too;
//   - a rejected request of this instance → its own record is tombstoned (it may name a
//     person and changed nothing).
//
// Start-up: a store last written longer ago than `rebuild_after` may have missed records
// that compaction removed since (the topic keeps everything for min.compaction.lag.ms); it
// is wiped and rebuilt from the log.
//
// Threads: reads and submit() from any thread; callbacks run on the log reader's thread and
// must be quick (hand work elsewhere). stop() from any thread but that one.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "kafka/log_reader.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"
#include "pipeline/identity/identity.h"
#include "pipeline/identity/identity_store.h"

namespace omnibus::pipeline::identity {

struct IdentityServiceOptions {
    std::string store_path;    // the RocksDB directory of this instance's identity store
    std::string topic;         // omnibus.identity
    std::string events_topic;  // omnibus.events
    std::string origin;        // this instance, e.g. "host-1:4242"; [A-Za-z0-9._:-]+
    std::chrono::milliseconds rebuild_after{std::chrono::hours(24 * 6)};
    // Called on the reader thread after an `erase` applied here (also one replayed at start-up)
    // with the identities it removed (Outcome::unlinked), when there are any. Must be quick.
    std::function<void(std::span<const std::string> identities)> on_erasure;
};

class IdentityService {
public:
    using Callback = std::function<void(const Outcome&)>;

    // Opens the store (rebuilding a stale one) and starts reading the log. Throws
    // std::runtime_error when the store cannot be opened.
    IdentityService(const kafka::KafkaSettings& settings, metrics::Registry& metrics, kafka::Producer& producer,
                    IdentityServiceOptions options);
    ~IdentityService();  // stop()
    IdentityService(const IdentityService&) = delete;
    IdentityService& operator=(const IdentityService&) = delete;

    // Reads of the local state (any thread).
    std::optional<std::string> resolve_identity(std::string_view identity) const {
        return store_.resolve_identity(identity);
    }
    std::optional<Customer> customer(std::string_view id) const { return store_.resolve(id); }
    // The same without a copy (every message of the conversation stage asks).
    std::shared_ptr<const Customer> customer_shared(std::string_view id) const { return store_.survivor(id); }
    std::int64_t applied_offset() const { return store_.next_offset(); }

    // True once everything on the log when called has been applied here (bounded wait).
    bool wait_caught_up(std::chrono::milliseconds timeout);

    // Appends `r` (its id, at_ms and origin are filled in when empty) and calls `done` once,
    // with the Outcome when the request has applied here, or with ok=false and the reason when
    // it could not be appended or the service stopped first. Returns the request id.
    std::string submit(Request r, Callback done);

    void stop();

private:
    void on_records(std::vector<kafka::LogRecord>& records);
    void after_apply(const Request& r, const Outcome& o);
    void fail_waiters(const std::string& why);

    IdentityServiceOptions options_;
    kafka::Producer& producer_;
    IdentityStore store_;
    std::mutex waiters_mu_;
    std::unordered_map<std::string, Callback> waiters_;  // request id → callback; guarded
    std::atomic<bool> stopped_{false};
    metrics::Counter* applied_;
    metrics::Counter* rejected_;
    metrics::Counter* skipped_;
    metrics::Counter* merges_;
    metrics::Gauge* offset_gauge_;
    std::unique_ptr<kafka::LogReader> reader_;  // last: stopped first
};

}  // namespace omnibus::pipeline::identity
