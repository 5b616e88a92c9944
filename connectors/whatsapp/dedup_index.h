// DedupIndex: the in-memory index of the dedup window, DedupKey → expiry (ms), as a flat
// open-addressing table with linear probing that grows incrementally.
//
// Why not std::unordered_map: every webhook looks its ids up here, and the window holds
// millions of them (7 days of traffic). A node-based map costs two cache misses per lookup
// (the bucket, then the node) and ~80 bytes per id; here a lookup is one miss into a
// 24-byte slot (32-48 bytes per id at the table's load of 0.375-0.75). It was the hottest
// function of omnibusd's own code under bench/ingest.
//
// Why it grows incrementally: the store's one mutex guards the index, so a growth that
// rehashed every id at once stopped every webhook for the whole rehash: 72 ms at 400,000
// ids, 150 ms at 800,000 and 600 ms at 3 million on a 2-core VM (bench/ingest saw them as p99
// outliers of 40-120 ms), and seconds for a shop's week of ids. Now nothing costs more than a
// few slots and one page at a time:
// - From a load of 0.72 the doubled table is mapped (mmap: the kernel's zero pages) and
//   written one page per try_emplace, so its pages are faulted in before it is used, each
//   once, by a write. (Read first, a page maps the shared zero page and faults again on the
//   first write, with a TLB flush: twice the cost, measured.) Should ids expire faster than
//   they come and the load fall under 0.7, its pages go back 16 per try_emplace.
// - At a load of 0.75 it becomes the table and the old one is moved over kStep slots per
//   try_emplace. That is done well before the new table could need to grow again (it takes
//   capacity/2/kStep insertions; the new table has room for 0.375 × capacity more ids). The
//   moved part of the old table is handed back to the kernel as the move goes
//   (MADV_DONTNEED), so no single unmap of the whole table is left for the end.
// - Meanwhile a key is live in exactly one table: lookups try the new table, then the old
//   one, and a key found in the old one is moved over at once, so every pointer the index
//   hands out points into the new table. A moved slot of the old table keeps its key and
//   says kMoved, so the old table's probe chains stay whole; a probe that reaches the moved
//   (and released) part skips to the first slot not yet moved, as nothing live is before it.
//
// The keys are SHA-256 digests, so their low 64 bits are already uniform: they are the hash.
// Deletion shifts the following slots back (no tombstones), so lookups never slow down as
// ids expire.
//
// Values are expiries (ms since the epoch, in the future): kEmpty (0) and kMoved are never
// stored. The interface is the part of std::unordered_map the dedup store uses: find/end give
// a pointer to the slot (->first, ->second), erase(it), try_emplace, operator[], size. A
// pointer is valid until the next try_emplace or erasure. Not thread-safe (the store's mutex
// guards it).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <utility>

#include "connectors/whatsapp/dedup_store.h"

namespace omnibus::connectors::whatsapp {

class DedupIndex {
public:
    static constexpr std::int64_t kEmpty = 0;                                         // a free slot: zero memory
    static constexpr std::int64_t kMoved = std::numeric_limits<std::int64_t>::min();  // old table only
    static constexpr std::size_t kStep = 8;  // old slots moved per try_emplace while growing
    struct Slot {
        DedupKey first;
        std::int64_t second;
    };
    using iterator = Slot*;

    DedupIndex() : table_(kMinSlots) {}

    std::size_t size() const { return size_; }
    std::size_t capacity() const { return table_.size(); }
    // Slots of the old table not yet moved to the new one (0 when not growing).
    std::size_t growing() const { return old_.size() - cursor_; }
    // Bytes of the next table written so far (0 while none is mapped).
    std::size_t prepared() const { return touched_; }
    iterator end() { return nullptr; }

    iterator find(const DedupKey& k) {
        if (Slot* s = table_.find(k, 0)) return s;
        if (old_.size() == 0) return nullptr;
        Slot* o = old_.find(k, cursor_);
        if (!o) return nullptr;
        Slot* s = table_.add(k, o->second);
        o->second = kMoved;
        return s;
    }

    // Inserts k → value unless k is present; returns its slot and whether it was inserted.
    std::pair<iterator, bool> try_emplace(const DedupKey& k, std::int64_t value) {
        step(kStep);
        prepare();
        if ((size_ + 1) * 4 > table_.size() * 3) grow();
        if (Slot* s = find(k)) return {s, false};
        ++size_;
        return {table_.add(k, value), true};
    }

    // The value of k, inserted as 1 when absent: assign to it at once.
    std::int64_t& operator[](const DedupKey& k) { return try_emplace(k, 1).first->second; }

    bool erase(const DedupKey& k) {
        iterator it = find(k);
        if (!it) return false;
        erase(it);
        return true;
    }

    // `it` is in the new table (find() moves what it finds there). Backward-shift deletion: the
    // slots after the hole that would be found from it move into it.
    void erase(iterator it) {
        table_.erase(it);
        --size_;
    }

private:
    static constexpr std::size_t kMinSlots = 1024;  // 24 KiB: a whole number of pages, as every larger table
    static constexpr std::size_t kPage = 4096;

    // Slots in an anonymous mapping of their own: zero pages from the kernel, returned to it
    // piecewise (release) and at once (destructor) without the allocator in between.
    class Table {
    public:
        Table() = default;
        explicit Table(std::size_t n) : size_(n) {
            void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) throw std::bad_alloc();
            slots_ = static_cast<Slot*>(p);
        }
        Table(Table&& o) noexcept : slots_(std::exchange(o.slots_, nullptr)), size_(std::exchange(o.size_, 0)) {}
        Table& operator=(Table&& o) noexcept {
            if (this != &o) {
                unmap();
                slots_ = std::exchange(o.slots_, nullptr);
                size_ = std::exchange(o.size_, 0);
            }
            return *this;
        }
        ~Table() { unmap(); }

        std::size_t size() const { return size_; }
        std::size_t bytes() const { return size_ * sizeof(Slot); }
        unsigned char* memory() { return reinterpret_cast<unsigned char*>(slots_); }
        Slot& operator[](std::size_t i) { return slots_[i]; }
        std::size_t home(const DedupKey& k) const { return static_cast<std::size_t>(k.lo) & (size_ - 1); }
        std::size_t next(std::size_t i) const { return (i + 1) & (size_ - 1); }

        // The live slot of k (a moved one is not), or nullptr. Slots before `from` are moved
        // (and may be released): a probe that lands there goes on at `from`, and stops after
        // the slots from `from` on, as the free slots may all be in the moved part.
        Slot* find(const DedupKey& k, std::size_t from) {
            std::size_t i = std::max(home(k), from);
            for (std::size_t left = size_ - from; left > 0; --left) {
                Slot& s = slots_[i];
                if (s.second == kEmpty) return nullptr;
                if (s.first == k) return s.second == kMoved ? nullptr : &s;
                i = next(i);
                if (i < from) i = from;
            }
            return nullptr;
        }
        // Puts k, known to be absent, into the first free slot of its chain.
        Slot* add(const DedupKey& k, std::int64_t value) {
            for (std::size_t i = home(k);; i = next(i)) {
                Slot& s = slots_[i];
                if (s.second == kEmpty) {
                    s.first = k;
                    s.second = value;
                    return &s;
                }
            }
        }
        void erase(Slot* it) {
            std::size_t hole = static_cast<std::size_t>(it - slots_);
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
        }
        // Gives the whole pages of [0, end) bytes from `begin` back to the kernel.
        void release(std::size_t begin, std::size_t end) {
            if (end > begin) (void)::madvise(memory() + begin, end - begin, MADV_DONTNEED);
        }

    private:
        void unmap() {
            if (slots_) (void)::munmap(slots_, bytes());
            slots_ = nullptr;
        }
        Slot* slots_ = nullptr;
        std::size_t size_ = 0;
    };

    // From a load of 0.72: maps the next table and writes one more of its pages per call.
    // Under 0.7 (ids expired meanwhile) it hands the written pages back, 16 per call, and
    // unmaps it once none is left: a table held at a steady load would double the memory,
    // and unmapping it written at once would be a pause of its own.
    void prepare() {
        if (old_.size() != 0) return;
        if (size_ * 100 >= table_.size() * 72) {
            if (next_.size() == 0) {
                next_ = Table(table_.size() * 2);
                touched_ = 0;
            }
            if (touched_ < next_.bytes()) {
                *reinterpret_cast<volatile unsigned char*>(next_.memory() + touched_) = 0;
                touched_ += kPage;
            }
        } else if (next_.size() != 0 && size_ * 100 < table_.size() * 70) {
            const std::size_t keep = touched_ > kRelease ? touched_ - kRelease : 0;
            next_.release(keep, touched_);
            touched_ = keep;
            if (touched_ == 0) next_ = Table();
        }
    }
    void grow() {
        step(growing());  // not reached with kStep ≥ 2 (see above); keeps one growth at a time
        if (next_.size() == 0) next_ = Table(table_.size() * 2);
        old_ = std::exchange(table_, std::move(next_));
        cursor_ = 0;
        released_ = 0;
        touched_ = 0;
    }
    // Moves up to n slots of the old table, handing the moved pages back; unmaps it once all are moved.
    void step(std::size_t n) {
        if (old_.size() == 0) return;
        for (const std::size_t stop = std::min(old_.size(), cursor_ + n); cursor_ < stop; ++cursor_) {
            Slot& o = old_[cursor_];
            if (o.second == kEmpty || o.second == kMoved) continue;
            table_.add(o.first, o.second);
            o.second = kMoved;
        }
        if (cursor_ == old_.size()) {
            old_ = Table();
            cursor_ = 0;
            return;
        }
        const std::size_t done = cursor_ * sizeof(Slot) / kRelease * kRelease;
        if (done > released_) {
            old_.release(released_, done);
            released_ = done;
        }
    }
    static constexpr std::size_t kRelease = 16 * kPage;  // handed back in 64 KiB pieces

    Table table_;
    Table next_;                // mapped from a load of 0.72 until it becomes table_ (or is let go under 0.7)
    Table old_;                 // while growing: the table being moved from, else empty
    std::size_t touched_ = 0;   // bytes of next_ written
    std::size_t cursor_ = 0;    // old_'s slots before it are moved
    std::size_t released_ = 0;  // bytes of old_ handed back
    std::size_t size_ = 0;      // live ids in both tables
};

}  // namespace omnibus::connectors::whatsapp
