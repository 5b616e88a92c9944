// IdentityStore: an instance's copy of the identity state, in RocksDB, with the offset of the
// identity log it reflects.
//
// Each apply() of a batch of log records is one atomic RocksDB write holding the state
// changes and the next offset to read, so after a crash the store and its offset agree:
// reading resumes at the stored offset, and no request is applied twice or skipped.
//
// Layout: "i/<identity>" → customer id; "c/<customer id>" → encoded Customer;
// "m/next_offset" → the next log offset to apply (decimal); "m/applied_ms" → wall time of
// the last apply (decimal ms), which tells whether the store is older than the log's
// compaction lag and must be rebuilt.
//
// Threads: reads (customer_of, customer, resolve, next_offset, applied_ms) from any thread,
// concurrently; they see whole batches only. apply() and wipe() from one thread at a time.
// Reads of "i/" and "c/" keys are cached (kCacheEntries keys); apply() and wipe() drop what
// they change, so a read never answers older than the last apply() that returned.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/identity/identity.h"

namespace omnibus::pipeline::identity {

struct LogEntry {
    std::int64_t offset = 0;
    std::optional<Request> request;  // nullopt: a tombstone or an undecodable record (skipped)
};

class IdentityStore {
public:
    // Opens or creates the store at `path` (directories created). Throws std::runtime_error
    // naming the path and RocksDB's reason.
    // `cache_entries`: how many keys the read cache holds before it starts over (0: no cache).
    static constexpr std::size_t kCacheEntries = 16384;
    explicit IdentityStore(std::string path, std::size_t cache_entries = kCacheEntries);
    ~IdentityStore();
    IdentityStore(const IdentityStore&) = delete;
    IdentityStore& operator=(const IdentityStore&) = delete;

    std::optional<std::string> customer_of(std::string_view identity) const;
    std::optional<Customer> customer(std::string_view id) const;
    // The survivor `id` stands for; nullopt when unknown or erased.
    std::optional<Customer> resolve(std::string_view id) const;
    // The same, without a copy: the cached customer, shared (null when unknown or erased).
    std::shared_ptr<const Customer> survivor(std::string_view id) const;
    // The customer (survivor) an identity belongs to.
    std::optional<std::string> resolve_identity(std::string_view identity) const;

    std::int64_t next_offset() const;  // 0 for a new store
    std::int64_t applied_ms() const;   // 0 for a new store

    // Applies the entries in order (offsets increasing, >= next_offset(); older ones are
    // skipped as already applied) and commits them with next_offset = last offset + 1.
    // Returns one Outcome per applied request, in order, with its offset.
    std::vector<std::pair<std::int64_t, Outcome>> apply(std::span<const LogEntry> entries, std::int64_t now_ms);

    // Deletes every key: the store is new again (next_offset 0).
    void wipe();

    const std::string& path() const { return path_; }

    struct Impl;  // the DB and its read cache (identity_store.cpp)

private:
    std::string path_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace omnibus::pipeline::identity
