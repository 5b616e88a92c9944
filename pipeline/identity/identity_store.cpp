// The identity state in RocksDB (see identity_store.h).
#include "pipeline/identity/identity_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <charconv>
#include <filesystem>
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

// identity::Store over the DB plus the batch being built: reads see the batch's writes.
class BatchStore final : public Store {
public:
    explicit BatchStore(rocksdb::DB& db) : db_(db) {}

    std::optional<std::string> customer_of(std::string_view identity) override {
        return read(identity_key(identity));
    }
    std::optional<Customer> customer(std::string_view id) override {
        auto v = read(customer_key(id));
        return v ? decode_customer(*v) : std::nullopt;
    }
    void put_identity(std::string_view identity, std::string_view customer_id) override {
        write(identity_key(identity), std::string(customer_id));
    }
    void erase_identity(std::string_view identity) override { write(identity_key(identity), std::nullopt); }
    void put_customer(const Customer& c) override { write(customer_key(c.id), encode(c)); }
    void erase_customer(std::string_view id) override { write(customer_key(id), std::nullopt); }

    rocksdb::WriteBatch& batch() { return batch_; }

private:
    std::optional<std::string> read(const std::string& key) {
        if (auto it = overlay_.find(key); it != overlay_.end()) return it->second;
        return get(db_, key);
    }
    void write(std::string key, std::optional<std::string> value) {
        if (value)
            batch_.Put(key, *value);
        else
            batch_.Delete(key);
        overlay_[std::move(key)] = std::move(value);
    }

    rocksdb::DB& db_;
    std::unordered_map<std::string, std::optional<std::string>> overlay_;
    rocksdb::WriteBatch batch_;
};

}  // namespace

struct IdentityStore::Impl {
    std::unique_ptr<rocksdb::DB> db;
    std::optional<std::string> get(std::string_view key) const { return identity::get(*db, key); }
};

IdentityStore::IdentityStore(std::string path) : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
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
    auto v = impl_->get(customer_key(id));
    return v ? decode_customer(*v) : std::nullopt;
}

std::optional<Customer> IdentityStore::resolve(std::string_view id) const {
    // The state machine's own alias walk, over the DB with nothing written. Reads of one
    // RocksDB snapshot would be stricter; a merge between two reads only makes the answer
    // the newer survivor, which is as good.
    BatchStore reader(*impl_->db);
    return identity::resolve(reader, id);
}

std::optional<std::string> IdentityStore::resolve_identity(std::string_view identity) const {
    auto cid = customer_of(identity);
    if (!cid) return std::nullopt;
    auto c = customer(*cid);
    if (c && !c->merged_into) return cid;  // the common case: one read each
    auto r = resolve(*cid);
    return r ? std::optional<std::string>(r->id) : std::nullopt;
}

std::int64_t IdentityStore::next_offset() const {
    auto v = impl_->get(kNextOffset);
    return v ? to_int(*v) : 0;
}

std::int64_t IdentityStore::applied_ms() const {
    auto v = impl_->get(kAppliedMs);
    return v ? to_int(*v) : 0;
}

std::vector<std::pair<std::int64_t, Outcome>> IdentityStore::apply(std::span<const LogEntry> entries,
                                                                   std::int64_t now_ms) {
    std::vector<std::pair<std::int64_t, Outcome>> out;
    if (entries.empty()) return out;
    const std::int64_t from = next_offset();
    BatchStore store(*impl_->db);
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
    return out;
}

void IdentityStore::wipe() {
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) batch.Delete(it->key());
    if (!it->status().ok()) throw std::runtime_error("identity store " + path_ + ": " + it->status().ToString());
    rocksdb::Status st = impl_->db->Write(rocksdb::WriteOptions(), &batch);
    if (!st.ok()) throw std::runtime_error("identity store " + path_ + ": wipe: " + st.ToString());
}

}  // namespace omnibus::pipeline::identity
