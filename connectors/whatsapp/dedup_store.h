// The persistent dedup window of a webhook channel: which platform event ids
// (wamids, status events) Kafka has acknowledged in the last `window`, so a
// redelivered webhook produces nothing new, also after a restart.
//
// An id goes through three states: unknown → in flight (a request claimed it
// and is producing it) → accepted (its record was acknowledged; remembered
// until it expires). A request that meets an id in flight elsewhere does not
// produce it again: it waits for the owner's outcome through a Waiter, so two
// concurrent identical webhooks produce one set of records.
//
// Entries of other lifetimes share the store through remember() (the
// channel keeps each customer's service-window expiry here), and forget()
// removes one before it expires (the customer was erased).
//
// Storage: the index lives in memory (the hot path never touches the disk):
// 128 bits of SHA-256 of the id → expiry, ~80 bytes per id. Accepted ids are
// written to RocksDB under `path` by a background thread, one WriteBatch per
// 10 ms (no wake-up per request), WAL on and no fsync per write: a crashed
// process forgets the ids of its last ≤ 10 ms, a crashed machine what the OS
// had not written; a webhook retried then is produced again with the same
// deterministic ce_id, which downstream dedups on. Expired and forgotten ids are deleted from
// both (deletions are written before the puts of the same batch, so an entry forgotten and then
// remembered again in one batch is on disk). Open() loads the unexpired ones back.
//   RocksDB key: the 16 digest bytes; value: expiry, int64 ms since the epoch,
//   big-endian.
//
// Threads: claim(), settle(), remember(), forget(), contains(), size(), flush() and close() may
// be called from any thread (one mutex guards the index; waiters run after it is
// released). The writer thread owns the RocksDB writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace omnibus::connectors::whatsapp {

// 128 bits of SHA-256 of an id: collisions are out of reach at any volume.
struct DedupKey {
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;
    friend bool operator==(const DedupKey&, const DedupKey&) = default;
};
DedupKey dedup_key(std::string_view id);

class DedupStore {
public:
    struct Options {
        std::string path;                 // the RocksDB directory; created (with parents) when missing
        std::chrono::milliseconds window{std::chrono::hours(168)};
        std::function<std::int64_t()> now_ms;  // wall clock in ms since the epoch; default: system_clock
    };

    enum class Seen : std::uint8_t {
        claimed,    // unknown until now: the caller produces it, then settle()s it
        accepted,   // acknowledged within the window: a duplicate
        in_flight,  // another request is producing it: the waiter will be told its outcome
    };
    // Called once per in_flight key with whether the owner's record was accepted.
    using Waiter = std::function<void(bool accepted)>;

    // Opens or creates the store and loads the unexpired ids. Throws
    // std::runtime_error naming the path and RocksDB's reason (start-up).
    explicit DedupStore(Options options);
    ~DedupStore();  // close()
    DedupStore(const DedupStore&) = delete;
    DedupStore& operator=(const DedupStore&) = delete;

    // One critical section for all keys of a request; out[i] says what keys[i] is.
    // A key repeated within `keys` is claimed once and in_flight after that.
    void claim(std::span<const DedupKey> keys, std::vector<Seen>& out, const Waiter& waiter);

    // Ends claims: keys[i] with accepted[i] != 0 enter the window (and are
    // persisted in the background), the others are forgotten, so a retry
    // produces them. Waiters run on the calling thread before it returns.
    void settle(std::span<const DedupKey> keys, std::span<const unsigned char> accepted);

    // Keeps `key` in the window until `expiry_ms` (ms since the epoch), or
    // later if it already expires later: for facts other than event ids kept
    // in the same store, such as when a customer's service window closes.
    // Persisted like settled ids; a time already past is ignored. An
    // extension by less than `resolution_ms` is skipped: a customer writing
    // every few seconds costs one index update and write per resolution.
    void remember(const DedupKey& key, std::int64_t expiry_ms, std::int64_t resolution_ms = 0);
    // Removes `key` from the window now, in memory at once and from RocksDB with the next
    // background write (flush() to wait for it); a put of it still queued is dropped. True
    // when it was in the window. Idempotent and cheap for a key that is not there. Keys in
    // flight (claimed, not settled) are left to their owner. After close(), memory only.
    bool forget(const DedupKey& key);
    // When `key` leaves the window; nullopt when it is not in it.
    std::optional<std::int64_t> expiry(const DedupKey& key) const;

    bool contains(const DedupKey& key) const;  // accepted and not expired
    std::size_t size() const;                  // ids in the window (accepted)

    // Writes everything accepted so far to RocksDB now (tests, shutdown).
    void flush();
    // Flushes, stops the writer and closes RocksDB (its lock is released, so
    // the directory can be opened again). The in-memory index keeps working;
    // ids accepted after close() are no longer persisted. Idempotent.
    void close();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace omnibus::connectors::whatsapp
