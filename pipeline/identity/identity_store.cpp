// The identity state in RocksDB (see identity_store.h).
#include "pipeline/identity/identity_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <charconv>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace omnibus::pipeline::identity {
namespace {

constexpr std::string_view kNextOffset = "m/next_offset";
constexpr std::string_view kAppliedMs = "m/applied_ms";

std::string identity_key(std::string_view identity) { return "i/" + std::string(identity); }
std::string customer_key(std::string_view id) { return "c/" + std::string(id); }

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

std::int64_t to_int(const std::string& s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc{} && p == s.data() + s.size() ? v : 0;
}

std::optional<std::string> get(rocksdb::DB& db, std::string_view key) {
    std::string value;
    rocksdb::Status st = db.Get(rocksdb::ReadOptions(), slice(key), &value);
    if (st.IsNotFound()) return std::nullopt;
    if (!st.ok()) throw std::runtime_error("identity store read: " + st.ToString());
    return value;
}

}  // namespace

// The DB and a cache of what was read from it ("i/" and "c/" keys, found or not; customers
// decoded). Every message looks up two or three keys, mostly of customers seen a moment ago:
// a RocksDB Get costs a memtable search and a copy, and a customer a JSON decode; a hit is one
// hash lookup. Coherence: apply() writes its batch, then drops the keys it wrote and moves
// the generation on; a reader inserts what it read only when no apply() ended since it
// looked (else the value may be older than the DB).
struct IdentityStore::Impl {
    struct Entry {
        std::optional<std::string> raw;
        std::optional<Customer> customer;  // "c/" keys: raw decoded
    };
    using EntryPtr = std::shared_ptr<const Entry>;

    std::unique_ptr<rocksdb::DB> db;
    std::size_t cache_entries = 0;  // then the cache starts over
    mutable std::mutex mu;
    mutable std::unordered_map<std::string, EntryPtr> cache;  // guarded by mu
    mutable std::uint64_t generation = 0;                     // guarded by mu

    EntryPtr read_db(const std::string& key) const {
        auto e = std::make_shared<Entry>();
        e->raw = identity::get(*db, key);
        if (e->raw && key.starts_with("c/")) e->customer = decode_customer(*e->raw);
        return e;
    }
    EntryPtr load(const std::string& key) const {
        if (cache_entries == 0) return read_db(key);
        std::uint64_t seen = 0;
        {
            std::lock_guard lock(mu);
            if (auto it = cache.find(key); it != cache.end()) return it->second;
            seen = generation;
        }
        EntryPtr e = read_db(key);
        std::lock_guard lock(mu);
        if (generation == seen) {
            if (cache.size() >= cache_entries) cache.clear();
            cache.emplace(key, e);
        }
        return e;
    }
    std::optional<std::string> get(const std::string& key) const { return load(key)->raw; }
    std::optional<Customer> customer(const std::string& key) const { return load(key)->customer; }

    template <class Keys>
    void written(const Keys& keys) {  // after the write: what was read before it is stale
        std::lock_guard lock(mu);
        for (const auto& [key, value] : keys) cache.erase(key);
        ++generation;
    }
    void forget_all() {
        std::lock_guard lock(mu);
        cache.clear();
        ++generation;
    }
};

namespace {

// identity::Store over the DB plus the batch being built: reads see the batch's writes.
class BatchStore final : public Store {
public:
    explicit BatchStore(const IdentityStore::Impl& db) : db_(db) {}

    std::optional<std::string> customer_of(std::string_view identity) override {
        return read(identity_key(identity));
    }
    std::optional<Customer> customer(std::string_view id) override {
        const std::string key = customer_key(id);
        if (auto it = overlay_.find(key); it != overlay_.end())
            return it->second ? decode_customer(*it->second) : std::nullopt;
        return db_.customer(key);
    }
    void put_identity(std::string_view identity, std::string_view customer_id) override {
        write(identity_key(identity), std::string(customer_id));
    }
    void erase_identity(std::string_view identity) override { write(identity_key(identity), std::nullopt); }
    void put_customer(const Customer& c) override { write(customer_key(c.id), encode(c)); }
    void erase_customer(std::string_view id) override { write(customer_key(id), std::nullopt); }

    rocksdb::WriteBatch& batch() { return batch_; }
    const std::unordered_map<std::string, std::optional<std::string>>& written() const { return overlay_; }

private:
    std::optional<std::string> read(const std::string& key) {
        if (auto it = overlay_.find(key); it != overlay_.end()) return it->second;
        return db_.get(key);
    }
    void write(std::string key, std::optional<std::string> value) {
        if (value)
            batch_.Put(key, *value);
        else
            batch_.Delete(key);
        overlay_[std::move(key)] = std::move(value);
    }

    const IdentityStore::Impl& db_;
    std::unordered_map<std::string, std::optional<std::string>> overlay_;
    rocksdb::WriteBatch batch_;
};

}  // namespace

IdentityStore::IdentityStore(std::string path, std::size_t cache_entries)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
    impl_->cache_entries = cache_entries;
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    if (ec) throw std::runtime_error("identity store " + path_ + ": cannot create directory: " + ec.message());
    rocksdb::Options o;
    o.create_if_missing = true;
    o.info_log_level = rocksdb::WARN_LEVEL;
    o.keep_log_file_num = 2;
    o.max_log_file_size = 1 << 20;
    o.write_buffer_size = 8 << 20;
    o.max_write_buffer_number = 2;
    o.max_open_files = 128;
    o.max_background_jobs = 1;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status st = rocksdb::DB::Open(o, path_, &raw);
    if (!st.ok()) throw std::runtime_error("identity store " + path_ + ": " + st.ToString());
    impl_->db.reset(raw);
}

IdentityStore::~IdentityStore() {
    if (impl_ && impl_->db) (void)impl_->db->Close();
}

std::optional<std::string> IdentityStore::customer_of(std::string_view identity) const {
    return impl_->get(identity_key(identity));
}

std::optional<Customer> IdentityStore::customer(std::string_view id) const {
    return impl_->customer(customer_key(id));
}

std::optional<Customer> IdentityStore::resolve(std::string_view id) const {
    auto c = survivor(id);
    return c ? std::optional<Customer>(*c) : std::nullopt;
}

std::shared_ptr<const Customer> IdentityStore::survivor(std::string_view id) const {
    // identity::resolve's walk, over the cached entries without copying them. Reads of one
    // RocksDB snapshot would be stricter; a merge between two reads only makes the answer the
    // newer survivor.
    auto e = impl_->load(customer_key(id));
    for (int hops = 0; hops < kMaxMergeHops && e->customer && e->customer->merged_into; ++hops)
        e = impl_->load(customer_key(*e->customer->merged_into));
    if (!e->customer || e->customer->merged_into) return nullptr;
    return {e, &*e->customer};  // shares the entry's ownership
}

std::optional<std::string> IdentityStore::resolve_identity(std::string_view identity) const {
    auto cid = customer_of(identity);
    if (!cid) return std::nullopt;
    auto c = survivor(*cid);
    return c ? std::optional<std::string>(c->id) : std::nullopt;
}

std::int64_t IdentityStore::next_offset() const {
    auto v = identity::get(*impl_->db, kNextOffset);  // written by apply() directly: never cached
    return v ? to_int(*v) : 0;
}

std::int64_t IdentityStore::applied_ms() const {
    auto v = identity::get(*impl_->db, kAppliedMs);
    return v ? to_int(*v) : 0;
}

std::vector<std::pair<std::int64_t, Outcome>> IdentityStore::apply(std::span<const LogEntry> entries,
                                                                   std::int64_t now_ms) {
    std::vector<std::pair<std::int64_t, Outcome>> out;
    if (entries.empty()) return out;
    const std::int64_t from = next_offset();
    BatchStore store(*impl_);
    std::int64_t last = from - 1;
    for (const LogEntry& e : entries) {
        if (e.offset < from || e.offset <= last) continue;  // applied already
        last = e.offset;
        if (e.request) out.emplace_back(e.offset, identity::apply(*e.request, e.offset, store));
    }
    if (last < from) return out;
    store.batch().Put(slice(kNextOffset), std::to_string(last + 1));
    store.batch().Put(slice(kAppliedMs), std::to_string(now_ms));
    rocksdb::WriteOptions wo;  // WAL on; a lost tail after a power cut is re-read from the log
    rocksdb::Status st = impl_->db->Write(wo, &store.batch());
    if (!st.ok()) throw std::runtime_error("identity store " + path_ + ": write: " + st.ToString());
    impl_->written(store.written());
    return out;
}

void IdentityStore::wipe() {
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(it->key());
    if (!it->status().ok()) throw std::runtime_error("identity store " + path_ + ": " + it->status().ToString());
    rocksdb::Status st = impl_->db->Write(rocksdb::WriteOptions(), &batch);
    impl_->forget_all();
    if (!st.ok()) throw std::runtime_error("identity store " + path_ + ": wipe: " + st.ToString());
}

}  // namespace omnibus::pipeline::identity
