// The in-memory tails of recently active customers (see tail_cache.h).
#include "pipeline/history/tail_cache.h"

#include <algorithm>

namespace omnibus::pipeline::history {
namespace {

// What one cached entry costs besides its strings: the struct, the vector slot, allocator slack.
constexpr std::size_t kEntryOverhead = 256;
constexpr std::size_t kSlotOverhead = 192;

std::size_t entry_bytes(const CachedEntry& c) {
    const HistoryEntry& e = c.entry;
    return kEntryOverhead + c.key.size() + e.customer.size() + e.id.size() + e.conversation.size() +
           e.channel_type.size() + e.channel_name.size() + e.content_type.size() + context_bytes_of(e) +
           e.author.size() + e.platform_message_id.size() + e.sender.size();
}

}  // namespace

std::size_t context_bytes_of(const HistoryEntry& e) {
    return (e.text ? e.text->size() : 0) + (e.subject ? e.subject->size() : 0);
}

TailCache::TailCache(std::size_t keep_entries, std::size_t keep_text_bytes, std::size_t max_bytes)
    : keep_entries_(std::max<std::size_t>(keep_entries, 1)), keep_text_bytes_(keep_text_bytes), max_bytes_(max_bytes) {}

void TailCache::trim(Tail& t) const {
    auto& v = t.entries;
    // Exactly what a context read from the newest end looks at.
    const auto reach = reach_back(v.begin(), v.end(), keep_entries_, keep_text_bytes_);
    if (reach.looked_at != v.begin()) {
        v.erase(v.begin(), reach.looked_at);
        t.whole = false;
    }
}

std::size_t TailCache::bytes_of(const Tail& t) {
    std::size_t n = kSlotOverhead + (t.state ? t.state->size() : 0);
    for (const auto& c : t.entries) n += entry_bytes(c);
    return n;
}

TailCache::Slot* TailCache::held(const void* owner, std::string_view customer) {
    auto it = slots_.find(customer);
    if (it == slots_.end()) return nullptr;
    if (it->second.owner != owner) {  // loaded from a store that is gone: not this one's history
        erase(it);
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return &it->second;
}

void TailCache::erase(Slots::iterator it) {
    bytes_ -= it->second.bytes;
    lru_.erase(it->second.lru);
    slots_.erase(it);
}

void TailCache::account(Slot& s) {
    const std::size_t now = bytes_of(s.tail);
    bytes_ = bytes_ - s.bytes + now;
    s.bytes = now;
    while (bytes_ > max_bytes_ && !lru_.empty()) {
        // Least recently used first; a tail larger than the whole budget goes too.
        auto victim = slots_.find(lru_.back());
        erase(victim);
        ++evictions_;
        if (counters_.evictions) counters_.evictions->inc();
    }
}

const Tail& TailCache::find_or_load(const void* owner, std::string_view customer, const std::function<Tail()>& load) {
    if (Slot* s = held(owner, customer)) {
        ++hits_;
        if (counters_.hits) counters_.hits->inc();
        return s->tail;
    }
    ++misses_;
    if (counters_.misses) counters_.misses->inc();
    Tail t = load();
    trim(t);
    auto it = slots_.find(customer);
    if (it == slots_.end()) {
        lru_.emplace_front(customer);
        it = slots_.emplace(lru_.front(), Slot{}).first;
        it->second.lru = lru_.begin();
    }
    it->second.owner = owner;
    it->second.tail = std::move(t);
    account(it->second);
    if (auto kept = slots_.find(customer); kept != slots_.end()) return kept->second.tail;
    // Larger than the whole budget: evicted at once, answered from outside the cache this once.
    oversize_ = load();
    trim(oversize_);
    return oversize_;
}

void TailCache::put(const void* owner, const std::string& key, HistoryEntry e) {
    std::lock_guard lock(mu_);
    auto it = slots_.find(e.customer);
    if (it == slots_.end() || it->second.owner != owner) return;
    Slot& s = it->second;
    auto& v = s.tail.entries;
    auto pos = first_not_before(v, key);
    if (pos != v.end() && pos->key == key) {
        pos->entry = std::move(e);  // the same message written again
    } else {
        // Older than every entry of a tail that is not whole: outside what it covers.
        if (pos == v.begin() && !s.tail.whole) return;
        v.insert(pos, CachedEntry{key, std::move(e)});
        trim(s.tail);
    }
    account(s);
}

void TailCache::set_state(const void* owner, std::string_view customer, std::optional<std::string> state) {
    std::lock_guard lock(mu_);
    auto it = slots_.find(customer);
    if (it == slots_.end() || it->second.owner != owner) return;
    it->second.tail.state = std::move(state);
    account(it->second);
}

void TailCache::drop(std::string_view customer) {
    std::lock_guard lock(mu_);
    auto it = slots_.find(customer);
    if (it != slots_.end()) erase(it);
}

void TailCache::drop_owner(const void* owner) {
    std::lock_guard lock(mu_);
    for (auto it = slots_.begin(); it != slots_.end();) {
        auto next = std::next(it);
        if (it->second.owner == owner) erase(it);
        it = next;
    }
}

void TailCache::count_into(Counters c) {
    std::lock_guard lock(mu_);
    counters_ = c;
}

TailCacheStats TailCache::stats() const {
    std::lock_guard lock(mu_);
    return {hits_, misses_, evictions_, slots_.size(), bytes_};
}

}  // namespace omnibus::pipeline::history
