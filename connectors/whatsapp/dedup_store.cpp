// The persistent dedup window (see dedup_store.h): in-memory index, RocksDB behind it.
#include "connectors/whatsapp/dedup_store.h"

#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "connectors/whatsapp/dedup_index.h"
#include "log/log.h"

namespace omnibus::connectors::whatsapp {
namespace {

const log::Logger logger{"whatsapp"};

// How long the writer gathers accepted ids before one RocksDB write.
constexpr std::chrono::milliseconds kBatchDelay{10};
constexpr std::size_t kSweepChunk = 4096;  // expired ids per hold of the mutex (~0.5 ms)

struct MdFree {
    void operator()(EVP_MD* md) const { EVP_MD_free(md); }
};

const EVP_MD* sha256() {
    static const std::unique_ptr<EVP_MD, MdFree> md(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    return md.get();
}

std::uint64_t load_be64(const unsigned char* p) {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}

void store_be64(std::uint64_t v, char* p) {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<char>(v & 0xff);
        v >>= 8;
    }
}

std::string key_bytes(const DedupKey& k) {
    std::string s(16, '\0');
    store_be64(k.hi, s.data());
    store_be64(k.lo, s.data() + 8);
    return s;
}

std::string expiry_bytes(std::int64_t expiry) {
    std::string s(8, '\0');
    store_be64(static_cast<std::uint64_t>(expiry), s.data());
    return s;
}

struct KeyHash {
    std::size_t operator()(const DedupKey& k) const { return static_cast<std::size_t>(k.lo); }
};

std::int64_t system_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

DedupKey dedup_key(std::string_view id) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(id.data(), id.size(), md, &len, sha256(), nullptr) != 1 || len < 16)
        throw std::runtime_error("SHA-256 failed");  // OpenSSL without SHA-256: cannot happen after start-up
    return DedupKey{load_be64(md), load_be64(md + 8)};
}

struct DedupStore::Impl {
    Options options;

    mutable std::mutex mu;  // guards everything below except db (owned by the writer thread)
    std::condition_variable wake;
    DedupIndex accepted;                                            // → expiry (ms)
    std::unordered_map<DedupKey, std::vector<Waiter>, KeyHash> in_flight;
    std::deque<std::pair<std::int64_t, DedupKey>> expiries;  // insertion order ≈ expiry order
    std::vector<std::pair<DedupKey, std::int64_t>> to_put;   // accepted, not yet written
    std::vector<DedupKey> to_delete;                         // expired or forgotten, not yet deleted
    std::uint64_t queued_generation = 0;   // bumped per queued change
    std::uint64_t written_generation = 0;  // what the writer has written
    std::condition_variable written;
    bool stopping = false;
    bool flush_requested = false;
    bool closed = false;
    bool warned_unpersisted = false;

    std::unique_ptr<rocksdb::DB> db;
    std::thread writer;

    std::int64_t now() const { return options.now_ms(); }

    void open() {
        std::error_code ec;
        std::filesystem::create_directories(options.path, ec);
        if (ec) throw std::runtime_error("dedup store " + options.path + ": cannot create directory: " + ec.message());
        rocksdb::Options o;
        o.create_if_missing = true;
        o.info_log_level = rocksdb::WARN_LEVEL;
        o.keep_log_file_num = 2;
        o.max_log_file_size = 1 << 20;
        o.write_buffer_size = 4 << 20;  // small memtables: ids are 24 bytes
        o.max_write_buffer_number = 2;
        o.max_open_files = 64;
        o.max_background_jobs = 1;
        // The store is written all the time and read once, at open (an iterator over
        // everything): a vector memtable appends where the default skip list searches
        // its insert position, which cost the writer thread most of its time under load.
        o.memtable_factory = std::make_shared<rocksdb::VectorRepFactory>();
        o.allow_concurrent_memtable_write = false;  // the vector memtable needs it off
        rocksdb::DB* raw = nullptr;
        rocksdb::Status st = rocksdb::DB::Open(o, options.path, &raw);
        if (!st.ok()) throw std::runtime_error("dedup store " + options.path + ": " + st.ToString());
        db.reset(raw);

        // Load what is still in the window; delete what expired while we were down.
        const std::int64_t t = now();
        rocksdb::WriteBatch expired;
        std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
        for (it->SeekToFirst(); it->Valid(); it->Next()) {
            const rocksdb::Slice k = it->key();
            const rocksdb::Slice v = it->value();
            if (k.size() != 16 || v.size() != 8) {
                expired.Delete(k);  // not ours: never written by this format
                continue;
            }
            const auto* kp = reinterpret_cast<const unsigned char*>(k.data());
            const auto expiry = static_cast<std::int64_t>(load_be64(reinterpret_cast<const unsigned char*>(v.data())));
            if (expiry <= t) {
                expired.Delete(k);
                continue;
            }
            const DedupKey key{load_be64(kp), load_be64(kp + 8)};
            accepted[key] = expiry;
            expiries.emplace_back(expiry, key);
        }
        if (!it->status().ok())
            throw std::runtime_error("dedup store " + options.path + ": " + it->status().ToString());
        it.reset();
        std::sort(expiries.begin(), expiries.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        if (expired.Count() > 0) {
            st = db->Write(rocksdb::WriteOptions(), &expired);
            if (!st.ok()) throw std::runtime_error("dedup store " + options.path + ": " + st.ToString());
        }
        logger.info("dedup store opened", {{"path", options.path},
                                           {"ids", static_cast<unsigned long>(accepted.size())},
                                           {"expired", static_cast<unsigned long>(expired.Count())}});
        writer = std::thread([this] { write_loop(); });
    }

    // Under mu: moves up to kSweepChunk expired ids from the index to to_delete; true when
    // more have expired. Normally a sweep finds the ids of 10 ms of traffic a window ago, but
    // after a stalled write (or a clock step) it can be millions, and every webhook waits on mu.
    bool sweep_locked(std::int64_t t) {
        for (std::size_t n = 0; !expiries.empty() && expiries.front().first <= t; ++n) {
            if (n == kSweepChunk) return true;
            const auto [expiry, key] = expiries.front();
            expiries.pop_front();
            auto it = accepted.find(key);
            if (it != accepted.end() && it->second == expiry) {  // not re-accepted since
                accepted.erase(it);
                to_delete.push_back(key);
                ++queued_generation;
            }
        }
        return false;
    }

    // Wakes the writer when the first change of a batch is queued (under mu).
    void queued_locked() {
        if (queued_generation++ == written_generation) wake.notify_one();
    }

    void write_loop() {
        std::unique_lock lock(mu);
        for (;;) {
            wake.wait_for(lock, std::chrono::seconds(1),
                          [&] { return stopping || queued_generation != written_generation; });
            // Collect what arrives meanwhile into one write: a write per request
            // cost the hot path a wake-up and a memtable insert each.
            if (!stopping && !flush_requested)
                wake.wait_for(lock, kBatchDelay, [&] { return stopping || flush_requested; });
            flush_requested = false;
            for (const std::int64_t t = now(); sweep_locked(t);) {
                lock.unlock();  // let the webhooks waiting on mu in between chunks
                std::this_thread::yield();
                lock.lock();
            }
            std::vector<std::pair<DedupKey, std::int64_t>> puts;
            std::vector<DedupKey> deletes;
            puts.swap(to_put);
            deletes.swap(to_delete);
            const std::uint64_t generation = queued_generation;
            const bool stop = stopping;
            lock.unlock();
            if (!puts.empty() || !deletes.empty()) {
                rocksdb::WriteBatch batch;
                // Deletions first: a key swept or forgotten and then accepted or remembered
                // again since the last write must end up present. (A key remembered and then
                // forgotten has no put left: forget() drops it.)
                for (const auto& k : deletes) batch.Delete(key_bytes(k));
                for (const auto& [k, expiry] : puts) batch.Put(key_bytes(k), expiry_bytes(expiry));
                rocksdb::WriteOptions wo;  // WAL on, sync off: see the header
                const rocksdb::Status st = db->Write(wo, &batch);
                if (!st.ok())
                    logger.error("dedup store write failed; these ids may be produced again after a restart",
                                 {{"path", options.path}, {"error", st.ToString()},
                                  {"ids", static_cast<unsigned long>(puts.size())}});
            }
            lock.lock();
            written_generation = generation;
            written.notify_all();
            if (stop && queued_generation == written_generation) return;
        }
    }
};

DedupStore::DedupStore(Options options) : impl_(std::make_unique<Impl>()) {
    if (!options.now_ms) options.now_ms = system_now_ms;
    if (options.window <= std::chrono::milliseconds::zero()) throw std::invalid_argument("dedup window must be > 0");
    impl_->options = std::move(options);
    impl_->open();
}

DedupStore::~DedupStore() { close(); }

void DedupStore::claim(std::span<const DedupKey> keys, std::vector<Seen>& out, const Waiter& waiter) {
    out.clear();
    out.reserve(keys.size());
    std::lock_guard lock(impl_->mu);
    const std::int64_t t = impl_->now();
    for (const DedupKey& k : keys) {
        auto a = impl_->accepted.find(k);
        if (a != impl_->accepted.end() && a->second > t) {
            out.push_back(Seen::accepted);
            continue;
        }
        auto [it, fresh] = impl_->in_flight.try_emplace(k);
        if (fresh) {
            out.push_back(Seen::claimed);
        } else {
            it->second.push_back(waiter);
            out.push_back(Seen::in_flight);
        }
    }
}

void DedupStore::settle(std::span<const DedupKey> keys, std::span<const unsigned char> accepted) {
    std::vector<std::pair<Waiter, bool>> notify;
    {
        std::lock_guard lock(impl_->mu);
        const std::int64_t expiry = impl_->now() + impl_->options.window.count();
        bool queued = false;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            const bool ok = i < accepted.size() && accepted[i] != 0;
            auto it = impl_->in_flight.find(keys[i]);
            if (it == impl_->in_flight.end()) continue;  // settled already (a key repeated in one request)
            for (auto& w : it->second) notify.emplace_back(std::move(w), ok);
            impl_->in_flight.erase(it);
            if (!ok) continue;
            impl_->accepted[keys[i]] = expiry;
            impl_->expiries.emplace_back(expiry, keys[i]);
            if (impl_->closed) {
                if (!impl_->warned_unpersisted) {
                    impl_->warned_unpersisted = true;
                    logger.warn("ids accepted after the dedup store closed are not persisted",
                                {{"path", impl_->options.path}});
                }
                continue;
            }
            impl_->to_put.emplace_back(keys[i], expiry);
            queued = true;
        }
        if (queued) impl_->queued_locked();
    }
    for (auto& [w, ok] : notify) w(ok);
}

void DedupStore::remember(const DedupKey& key, std::int64_t expiry_ms, std::int64_t resolution_ms) {
    std::lock_guard lock(impl_->mu);
    if (expiry_ms <= impl_->now()) return;
    auto [it, fresh] = impl_->accepted.try_emplace(key, expiry_ms);
    if (!fresh) {
        if (it->second > expiry_ms - std::max<std::int64_t>(resolution_ms, 1)) return;
        it->second = expiry_ms;
    }
    // Out of expiry order when shorter than the window: swept once the ids
    // queued before it expire (contains() and expiry() check the time anyway).
    impl_->expiries.emplace_back(expiry_ms, key);
    if (impl_->closed) return;
    impl_->to_put.emplace_back(key, expiry_ms);
    impl_->queued_locked();
}

bool DedupStore::forget(const DedupKey& key) {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->accepted.find(key);
    if (it == impl_->accepted.end()) return false;
    const bool live = it->second > impl_->now();
    // Its entry in `expiries` stays: the sweep skips keys no longer in the index.
    impl_->accepted.erase(it);
    if (impl_->closed) return live;
    auto& puts = impl_->to_put;
    puts.erase(std::remove_if(puts.begin(), puts.end(), [&](const auto& p) { return p.first == key; }), puts.end());
    impl_->to_delete.push_back(key);
    impl_->queued_locked();
    return live;
}

std::optional<std::int64_t> DedupStore::expiry(const DedupKey& key) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->accepted.find(key);
    if (it == impl_->accepted.end() || it->second <= impl_->now()) return std::nullopt;
    return it->second;
}

bool DedupStore::contains(const DedupKey& key) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->accepted.find(key);
    return it != impl_->accepted.end() && it->second > impl_->now();
}

std::size_t DedupStore::size() const {
    std::lock_guard lock(impl_->mu);
    return impl_->accepted.size();
}

void DedupStore::flush() {
    std::unique_lock lock(impl_->mu);
    if (impl_->closed) return;
    const std::uint64_t target = impl_->queued_generation;
    impl_->flush_requested = true;
    impl_->wake.notify_one();
    impl_->written.wait(lock, [&] { return impl_->written_generation >= target || impl_->closed; });
}

void DedupStore::close() {
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->closed || impl_->stopping) return;
        impl_->stopping = true;
        impl_->wake.notify_one();
    }
    if (impl_->writer.joinable()) impl_->writer.join();
    if (impl_->db) {
        (void)impl_->db->Close();
        impl_->db.reset();
    }
    std::lock_guard lock(impl_->mu);
    impl_->closed = true;
    impl_->written.notify_all();
}

}  // namespace omnibus::connectors::whatsapp
