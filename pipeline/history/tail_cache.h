// TailCache: the newest history entries and the conversation state of recently active
// customers, in memory, in front of their HistoryStores.
//
// Why: every message the conversation stage handles reads its customer's newest entry (the
// conversation), the last N entries (context), the state and whether the message is there
// already (dedup). In RocksDB that is a point lookup, a backward seek and N Prev() steps with
// N JSON decodes; in the memtable each Prev() is a search of its own. A customer who writes
// once usually writes again within minutes, so the stage keeps what those reads need.
//
// What a tail holds: the customer's newest entries, in key order (oldest first), exactly as
// many as a context read from the newest end can look at: at most `keep_entries`, and no
// older than the first entry (from the newest) whose text overflows `keep_text_bytes`.
// Every entry of the customer whose key is at least the tail's oldest key is in the tail;
// `whole` says the tail holds every entry the customer has. Reads the tail cannot decide
// (an older key, a context further back) go to RocksDB.
//
// Consistency: the store writes RocksDB first and then tells the cache (put, remove, state,
// drop), which applies the change only to a tail it holds. A missing tail is loaded from
// RocksDB under the cache's lock, so a write racing with a load is either seen by the load or
// applied to the loaded tail afterwards. One cache serves every store of a stage; a tail is
// tagged with the store it was loaded from, and a store drops its tails when it is wiped or
// closed (the next owner of a partition may have written the history meanwhile).
//
// Bounds: the entries' bytes (keys, texts and a fixed overhead each) of all tails together
// stay under `max_bytes`; the least recently used tails are evicted first.
//
// Threads: every method, any thread (one mutex; loads run under it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics/metrics.h"
#include "pipeline/history/history_store.h"

namespace omnibus::pipeline::history {

struct CachedEntry {
    std::string key;  // entry_key(customer, at_ms, id)
    HistoryEntry entry;
};

// The first of `entries` (in key order) whose key is not before `key`.
template <class Entries>
auto first_not_before(Entries& entries, std::string_view key) {
    return std::lower_bound(entries.begin(), entries.end(), key,
                            [](const CachedEntry& c, std::string_view k) { return c.key < k; });
}

struct Tail {
    std::deque<CachedEntry> entries;  // oldest first
    bool whole = false;                // every entry of the customer is in `entries`
    std::optional<std::string> state;  // the customer's conversation state (HistoryStore::state)
};

struct TailCacheStats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;  // loads
    std::uint64_t evictions = 0;
    std::size_t tails = 0;
    std::size_t bytes = 0;
};

class TailCache {
public:
    // keep_entries >= 1 (the newest entry is always kept).
    TailCache(std::size_t keep_entries, std::size_t keep_text_bytes, std::size_t max_bytes);
    TailCache(const TailCache&) = delete;
    TailCache& operator=(const TailCache&) = delete;

    std::size_t keep_entries() const { return keep_entries_; }
    std::size_t keep_text_bytes() const { return keep_text_bytes_; }

    // Runs `fn(tail)` under the lock on `customer`'s tail as `owner` has it, calling `load()`
    // first (also under the lock) when the cache holds none of `owner`'s for that customer.
    // `load` returns the customer's newest entries, at least as many as trim() keeps, and the
    // state. fn returns nullopt when the tail cannot decide (the caller asks RocksDB).
    template <class R, class Fn>
    std::optional<R> read(const void* owner, std::string_view customer, const std::function<Tail()>& load, Fn&& fn) {
        std::lock_guard lock(mu_);
        return fn(find_or_load(owner, customer, load));
    }

    // After the store wrote them to RocksDB. put and set_state change a tail the cache holds (of
    // `owner`) and do nothing for customers it does not hold; drop forgets the customer's tail
    // (an entry removed: the tail would no longer reach back as far as trim() keeps).
    void put(const void* owner, const std::string& key, HistoryEntry e);
    void set_state(const void* owner, std::string_view customer, std::optional<std::string> state);
    void drop(std::string_view customer);
    void drop_owner(const void* owner);

    // Cuts a tail (entries oldest first) to what the cache keeps: `whole` is cleared when
    // entries are cut. Loaders use it.
    void trim(Tail& t) const;

    TailCacheStats stats() const;

    // Counters to keep beside stats() (a metrics registry's; they must outlive the cache).
    struct Counters {
        metrics::Counter* hits = nullptr;
        metrics::Counter* misses = nullptr;
        metrics::Counter* evictions = nullptr;
    };
    void count_into(Counters c);  // before the first read

private:
    struct Slot {
        const void* owner = nullptr;
        Tail tail;
        std::size_t bytes = 0;
        std::list<std::string>::iterator lru;  // position in lru_ (front: most recently used)
    };

    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    using Slots = std::unordered_map<std::string, Slot, Hash, std::equal_to<>>;

    const Tail& find_or_load(const void* owner, std::string_view customer, const std::function<Tail()>& load);
    Slot* held(const void* owner, std::string_view customer);  // touches the LRU order
    void erase(Slots::iterator it);
    void account(Slot& s);  // recomputes s.bytes, then evicts down to max_bytes_
    static std::size_t bytes_of(const Tail& t);

    const std::size_t keep_entries_;
    const std::size_t keep_text_bytes_;
    const std::size_t max_bytes_;

    mutable std::mutex mu_;
    Slots slots_;                                  // by customer
    std::list<std::string> lru_;                   // customers, most recently used first
    std::size_t bytes_ = 0;
    std::uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
    Tail oversize_;  // a tail larger than the whole budget, answered from here once
    Counters counters_;
};

// The text bytes a context counts for an entry (HistoryStore::recent's budget).
std::size_t context_bytes_of(const HistoryEntry& e);

// How far back from `end` a context read of at most `count` entries within `text_bytes` goes,
// over entries in key order (oldest first): it looks at entries from the newest down until it
// has `count` of them or one overflows the budget (looked at, then left out). `used` is the
// oldest entry it returns, `looked_at` the oldest it looks at; `decided` is false when the
// entries ran out before either limit. One rule for the reads and for what a tail keeps.
template <class It>
struct Reach {
    It looked_at;
    It used;
    bool decided = false;
};

template <class It>
Reach<It> reach_back(It begin, It end, std::size_t count, std::size_t text_bytes) {
    std::size_t n = 0, bytes = 0;
    for (It it = end; it != begin;) {
        --it;
        bytes += context_bytes_of(it->entry);
        if (bytes > text_bytes) return {it, std::next(it), true};
        if (++n == count) return {it, it, true};
    }
    return {begin, begin, false};
}

}  // namespace omnibus::pipeline::history
