// DedupIndex: the in-memory index of the dedup window, DedupKey → expiry (ms), as one flat
// open-addressing table with linear probing.
//
// Why not std::unordered_map: every webhook looks its ids up here, and the window holds
// millions of them (7 days of traffic). A node-based map costs two cache misses per lookup
// (the bucket, then the node) and ~80 bytes per id; here a lookup is one miss into a
// 24-byte slot (32-48 bytes per id at the table's load of 0.5-0.75). It was the hottest
// function of omnibusd's own code under bench/ingest.
//
// The keys are SHA-256 digests, so their low 64 bits are already uniform: they are the hash.
// Deletion shifts the following slots back (no tombstones), so lookups never slow down as
// ids expire. An empty slot has expiry kEmpty; that value is never stored (expiries are
// times in the future).
//
// The interface is the part of std::unordered_map the dedup store uses: find/end give a
// pointer to the slot (->first, ->second), erase(it), try_emplace, operator[], size. A
// pointer is valid until the next insertion or erasure. Not thread-safe (the store's mutex
// guards it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "connectors/whatsapp/dedup_store.h"

namespace omnibus::connectors::whatsapp {

class DedupIndex {
public:
    static constexpr std::int64_t kEmpty = std::numeric_limits<std::int64_t>::min();
    struct Slot {
        DedupKey first;
        std::int64_t second = kEmpty;
    };
    using iterator = Slot*;

    DedupIndex() : slots_(kMinSlots) {}

    std::size_t size() const { return size_; }
    std::size_t capacity() const { return slots_.size(); }
    iterator end() { return nullptr; }

    iterator find(const DedupKey& k) {
        for (std::size_t i = home(k);; i = next(i)) {
            Slot& s = slots_[i];
            if (s.second == kEmpty) return nullptr;
            if (s.first == k) return &s;
        }
    }

    // Inserts k → value unless k is present; returns its slot and whether it was inserted.
    std::pair<iterator, bool> try_emplace(const DedupKey& k, std::int64_t value) {
        if ((size_ + 1) * 4 > slots_.size() * 3) grow();
        for (std::size_t i = home(k);; i = next(i)) {
            Slot& s = slots_[i];
            if (s.second == kEmpty) {
                s.first = k;
                s.second = value;
                ++size_;
                return {&s, true};
            }
            if (s.first == k) return {&s, false};
        }
    }

    // The value of k, inserted as kEmpty's successor when absent: assign to it at once.
    std::int64_t& operator[](const DedupKey& k) { return try_emplace(k, kEmpty + 1).first->second; }

    bool erase(const DedupKey& k) {
        iterator it = find(k);
        if (!it) return false;
        erase(it);
        return true;
    }

    // Backward-shift deletion: the slots after the hole that would be found from it move into it.
    void erase(iterator it) {
        std::size_t hole = static_cast<std::size_t>(it - slots_.data());
        for (std::size_t i = next(hole);; i = next(i)) {
            Slot& s = slots_[i];
            if (s.second == kEmpty) break;
            const std::size_t h = home(s.first);
            // s may move into the hole when its home is not in (hole, i] (cyclically).
            const bool stays = hole <= i ? (hole < h && h <= i) : (hole < h || h <= i);
            if (!stays) {
                slots_[hole] = s;
                hole = i;
            }
        }
        slots_[hole] = Slot{};
        --size_;
    }

    void reserve(std::size_t n) {
        std::size_t want = kMinSlots;
        while (want * 3 < n * 4) want *= 2;
        if (want > slots_.size()) rehash(want);
    }

private:
    static constexpr std::size_t kMinSlots = 1024;
    std::size_t home(const DedupKey& k) const { return static_cast<std::size_t>(k.lo) & (slots_.size() - 1); }
    std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }
    void grow() { rehash(slots_.size() * 2); }
    void rehash(std::size_t n) {
        std::vector<Slot> old(n);
        old.swap(slots_);
        size_ = 0;
        for (const Slot& s : old)
            if (s.second != kEmpty) try_emplace(s.first, s.second);
    }

    std::vector<Slot> slots_;
    std::size_t size_ = 0;
};

}  // namespace omnibus::connectors::whatsapp
