// One partition's conversation history in RocksDB (see history_store.h).
#include "pipeline/history/history_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "envelope/json.h"
#include "pipeline/history/tail_cache.h"

namespace omnibus::pipeline::history {
namespace {

constexpr std::string_view kCheckpoint = "m/checkpoint";
constexpr std::string_view kEntryPrefix = "h/";
constexpr std::string_view kAbsorbedPrefix = "a/";

std::string absorbed_key(std::string_view survivor, std::string_view alias) {
    std::string k(kAbsorbedPrefix);
    k += survivor;
    k += '/';
    k += alias;
    return k;
}

std::string state_key(std::string_view customer) {
    std::string k("s/");
    k += customer;
    return k;
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

std::string customer_prefix(std::string_view customer) {
    std::string p;
    p.reserve(kEntryPrefix.size() + customer.size() + 1);
    p += kEntryPrefix;
    p += customer;
    p += '/';
    return p;
}

// "h/<customer>/<16 hex>/<id>" → at_ms; nullopt when the key is not an entry key.
std::optional<std::int64_t> at_of_key(std::string_view key) {
    if (key.substr(0, kEntryPrefix.size()) != kEntryPrefix) return std::nullopt;
    auto last = key.rfind('/');
    if (last == std::string_view::npos || last < 17) return std::nullopt;
    std::string_view hex = key.substr(last - 16, 16);
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
    if (ec != std::errc{} || p != hex.data() + hex.size()) return std::nullopt;
    if (v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;  // entry_key never writes these
    return static_cast<std::int64_t>(v);
}

const json::Value* member(const json::Value& o, const char* name) {
    auto it = o.FindMember(name);
    return it == o.MemberEnd() ? nullptr : &it->value;
}

std::string str(const json::Value* v) { return v && v->IsString() ? std::string(json::view(*v)) : std::string(); }

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string_view cut_utf8(std::string_view s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    return s.substr(0, n);
}

// Positions `it` on the newest key under `prefix` that sorts before `before`, or on the newest
// key under `prefix` when `before` is empty (the caller stops once a key leaves the prefix).
void seek_before(rocksdb::Iterator& it, const std::string& prefix, std::string_view before) {
    std::string end;
    if (before.empty()) {
        end = prefix;
        end.back() = '/' + 1;  // just past every key of the prefix
        before = end;
    }
    it.SeekForPrev(slice(before));
    if (it.Valid() && view(it.key()) == before) it.Prev();
}

std::size_t text_size(const HistoryEntry& e) { return context_bytes_of(e); }

// The customer an entry key ("h/<customer>/<16 hex>/<id>") or a state key ("s/<customer>")
// belongs to; nullopt for other keys.
std::optional<std::string_view> customer_of_key(std::string_view key) {
    if (key.starts_with("s/")) return key.substr(2);
    if (!at_of_key(key)) return std::nullopt;
    const auto last = key.rfind('/');
    return key.substr(kEntryPrefix.size(), last - 17 - kEntryPrefix.size());
}

// "h/<customer>/": a customer's entries arrive in time order, each right after the one
// before it in key order, so RocksDB can insert it next to the last insert of its customer
// instead of searching the memtable's skip list from the top
// (memtable_insert_with_hint_prefix_extractor).
class CustomerOfEntry final : public rocksdb::SliceTransform {
public:
    const char* Name() const override { return "omnibus.history.CustomerOfEntry"; }
    rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
        return {key.data(), end_of_prefix(view(key))};
    }
    bool InDomain(const rocksdb::Slice& key) const override { return end_of_prefix(view(key)) > 0; }

private:
    static std::size_t end_of_prefix(std::string_view key) {
        if (!key.starts_with(kEntryPrefix)) return 0;
        const auto slash = key.find('/', kEntryPrefix.size());
        return slash == std::string_view::npos ? 0 : slash + 1;
    }
};

}  // namespace

std::string entry_key(std::string_view customer, std::int64_t at_ms, std::string_view id) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(std::max<std::int64_t>(at_ms, 0)));
    std::string k = customer_prefix(customer);
    k.append(hex, 16);
    k += '/';
    k += id;
    return k;
}

std::string encode(const HistoryEntry& e) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "conv");
    json::write_string(w, e.conversation);
    json::write_key(w, "conv_ms");
    w.Int64(e.conversation_started_ms);
    json::write_key(w, "dir");
    json::write_string(w, envelope::to_string(e.direction));
    json::write_key(w, "ct");
    json::write_string(w, e.channel_type);
    json::write_key(w, "cn");
    json::write_string(w, e.channel_name);
    json::write_key(w, "type");
    json::write_string(w, e.content_type);
    if (e.subject) {
        json::write_key(w, "subject");
        json::write_string(w, *e.subject);
    }
    if (e.text) {
        json::write_key(w, "text");
        json::write_string(w, *e.text);
    }
    if (e.attachments) {
        json::write_key(w, "att");
        w.Uint(e.attachments);
    }
    json::write_key(w, "author");
    json::write_string(w, e.author);
    json::write_key(w, "pmid");
    json::write_string(w, e.platform_message_id);
    json::write_key(w, "sender");
    json::write_string(w, e.sender);
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

std::optional<HistoryEntry> decode_entry(std::string_view key, std::string_view value) {
    auto at = at_of_key(key);
    if (!at) return std::nullopt;
    auto last = key.rfind('/');
    HistoryEntry e;
    e.customer = std::string(key.substr(kEntryPrefix.size(), last - 17 - kEntryPrefix.size()));
    e.at_ms = *at;
    e.id = std::string(key.substr(last + 1));
    json::LocalDocument<4096> doc;
    if (!json::parse(value, doc, json::Limits{1 << 20, 4}, nullptr) || !doc.doc().IsObject()) return std::nullopt;
    const json::Value& o = doc.doc();
    e.conversation = str(member(o, "conv"));
    if (const auto* v = member(o, "conv_ms"); v && v->IsInt64()) e.conversation_started_ms = v->GetInt64();
    e.direction = envelope::parse_direction(str(member(o, "dir"))).value_or(envelope::Direction::inbound);
    e.channel_type = str(member(o, "ct"));
    e.channel_name = str(member(o, "cn"));
    e.content_type = str(member(o, "type"));
    if (const auto* v = member(o, "subject"); v && v->IsString()) e.subject = std::string(json::view(*v));
    if (const auto* v = member(o, "text"); v && v->IsString()) e.text = std::string(json::view(*v));
    if (const auto* v = member(o, "att"); v && v->IsUint()) e.attachments = v->GetUint();
    e.author = str(member(o, "author"));
    e.platform_message_id = str(member(o, "pmid"));
    e.sender = str(member(o, "sender"));
    return e;
}

HistoryEntry entry_of(const envelope::Envelope& env, std::string customer, std::string conversation,
                      std::int64_t conversation_started_ms) {
    HistoryEntry e;
    e.customer = std::move(customer);
    e.at_ms = env.received_at.time_since_epoch().count();
    e.id = env.id;
    e.conversation = std::move(conversation);
    e.conversation_started_ms = conversation_started_ms;
    e.direction = env.direction;
    e.channel_type = env.channel.type;
    e.channel_name = env.channel.name;
    e.content_type = std::string(envelope::to_string(env.content.type));
    if (env.content.subject) e.subject = std::string(cut_utf8(*env.content.subject, 998));
    if (env.content.text) e.text = std::string(cut_utf8(*env.content.text, kMaxTextBytes));
    e.attachments = static_cast<std::uint32_t>(env.content.attachments.size());
    if (env.direction == envelope::Direction::inbound) {
        e.author = "customer";
    } else if (env.sender.id.starts_with("agent:")) {
        e.author = env.sender.id;  // the agent's id: the helpdesk shows who answered
    } else {
        e.author = env.sender.id.starts_with("ai:") ? "ai" : "omnibus";
    }
    if (env.platform) e.platform_message_id = env.platform->message_id;
    e.sender = env.direction == envelope::Direction::inbound ? env.sender.id
                                                             : (env.recipient ? env.recipient->id : std::string());
    return e;
}

struct HistoryStore::Impl {
    std::unique_ptr<rocksdb::DB> db;
    rocksdb::WriteOptions data_write;    // no WAL: a store without a checkpoint is restored anyway
    rocksdb::WriteOptions synced_write;  // the checkpoint key

    void check(const rocksdb::Status& st, const char* what) const {
        if (!st.ok()) throw std::runtime_error(std::string("history store ") + what + ": " + st.ToString());
    }
    std::unique_ptr<rocksdb::Iterator> iter() const {
        return std::unique_ptr<rocksdb::Iterator>(db->NewIterator(rocksdb::ReadOptions()));
    }
};

HistoryStore::HistoryStore(std::string path, std::shared_ptr<TailCache> cache)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()), cache_(std::move(cache)) {
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    if (ec) throw std::runtime_error("history store " + path_ + ": cannot create directory: " + ec.message());
    rocksdb::Options o;
    o.create_if_missing = true;
    o.info_log_level = rocksdb::WARN_LEVEL;
    o.keep_log_file_num = 2;
    o.max_open_files = 64;
    o.write_buffer_size = 8 << 20;  // one store per partition: keep each one's memtable small
    o.max_write_buffer_number = 2;
    o.memtable_insert_with_hint_prefix_extractor = std::make_shared<CustomerOfEntry>();
    o.allow_concurrent_memtable_write = false;  // the hint needs it; the stage is the one writer but for a purge
    rocksdb::DB* db = nullptr;
    rocksdb::Status st = rocksdb::DB::Open(o, path_, &db);
    if (!st.ok()) throw std::runtime_error("history store " + path_ + ": " + st.ToString());
    impl_->db.reset(db);
    impl_->data_write.disableWAL = true;
    impl_->synced_write.sync = true;
}

HistoryStore::~HistoryStore() {
    if (cache_) cache_->drop_owner(this);
}

void HistoryStore::forget(std::string_view key) {
    if (!cache_) return;
    if (auto customer = customer_of_key(key)) cache_->drop(*customer);
}

std::optional<std::int64_t> HistoryStore::checkpoint() const {
    std::string v;
    rocksdb::Status st = impl_->db->Get(rocksdb::ReadOptions(), slice(kCheckpoint), &v);
    if (st.IsNotFound()) return std::nullopt;
    impl_->check(st, "read");
    std::int64_t off = 0;
    auto [p, err] = std::from_chars(v.data(), v.data() + v.size(), off);
    if (err != std::errc{} || p != v.data() + v.size() || off < 0) return std::nullopt;
    return off;
}

void HistoryStore::write_checkpoint(std::int64_t next_offset) {
    impl_->check(impl_->db->Flush(rocksdb::FlushOptions()), "flush");
    impl_->check(impl_->db->Put(impl_->synced_write, slice(kCheckpoint), std::to_string(next_offset)), "write");
}

void HistoryStore::clear_checkpoint() {
    impl_->check(impl_->db->Delete(impl_->synced_write, slice(kCheckpoint)), "write");
}

void HistoryStore::wipe() {
    rocksdb::WriteBatch b;
    // Every key lies in ["", "\xff"): entry keys and meta keys are printable.
    b.DeleteRange(rocksdb::Slice(""), rocksdb::Slice("\xff"));
    impl_->check(impl_->db->Write(impl_->synced_write, &b), "wipe");
    if (cache_) cache_->drop_owner(this);
}

void HistoryStore::apply_changelog(std::span<const Change> changes) {
    rocksdb::WriteBatch b;
    for (const auto& c : changes) {
        // Only entries, absorbed markers and customer states are mirrored; anything else is
        // not this store's.
        if (c.key.substr(0, kEntryPrefix.size()) != kEntryPrefix &&
            c.key.substr(0, kAbsorbedPrefix.size()) != kAbsorbedPrefix && !c.key.starts_with("s/"))
            continue;
        if (c.value) b.Put(c.key, *c.value);
        else b.Delete(c.key);
    }
    impl_->check(impl_->db->Write(impl_->data_write, &b), "restore");
    for (const auto& c : changes) forget(c.key);
}

std::optional<HistoryEntry> HistoryStore::find(std::string_view key) const {
    if (cache_) {
        if (auto customer = customer_of_key(key); customer && key.starts_with(kEntryPrefix)) {
            auto cached = cache_->read<std::optional<HistoryEntry>>(
                this, *customer, [&] { return load_tail(*customer); },
                [&](const Tail& t) -> std::optional<std::optional<HistoryEntry>> {
                    const auto& v = t.entries;
                    if (!t.whole && (v.empty() || key < v.front().key)) return std::nullopt;  // older than the tail
                    if (auto it = first_not_before(v, key); it != v.end() && it->key == key)
                        return std::optional<HistoryEntry>(it->entry);
                    return std::optional<HistoryEntry>();
                });
            if (cached) return std::move(*cached);
        }
    }
    std::string v;
    rocksdb::Status st = impl_->db->Get(rocksdb::ReadOptions(), slice(key), &v);
    if (st.IsNotFound()) return std::nullopt;
    impl_->check(st, "read");
    return decode_entry(key, v);
}

std::optional<HistoryEntry> HistoryStore::last(std::string_view customer) const {
    auto r = recent(customer, {}, 1, SIZE_MAX);
    if (r.empty()) return std::nullopt;
    return std::move(r.back());
}

std::optional<HistoryStore::ConversationTip> HistoryStore::last_conversation(std::string_view customer) const {
    std::optional<ConversationTip> tip;
    recent_each(customer, {}, 1, SIZE_MAX, [&](const HistoryEntry& e) {
        tip = ConversationTip{e.at_ms, e.conversation, e.conversation_started_ms};
    });
    return tip;
}

std::vector<HistoryEntry> HistoryStore::recent(std::string_view customer, std::string_view before_key,
                                               std::size_t count, std::size_t text_bytes) const {
    std::vector<HistoryEntry> out;
    recent_each(customer, before_key, count, text_bytes, [&](const HistoryEntry& e) { out.push_back(e); });
    return out;
}

void HistoryStore::recent_each(std::string_view customer, std::string_view before_key, std::size_t count,
                               std::size_t text_bytes, const std::function<void(const HistoryEntry&)>& fn) const {
    if (count == 0) return;
    // The cache answers for keys of the customer's own (the stage's reads); any other
    // `before_key` is RocksDB's business.
    if (cache_ && (before_key.empty() || before_key.starts_with(customer_prefix(customer)))) {
        auto answered = cache_->read<bool>(
            this, customer, [&] { return load_tail(customer); }, [&](const Tail& t) -> std::optional<bool> {
                const auto& v = t.entries;
                const auto end = before_key.empty() ? v.end() : first_not_before(v, before_key);
                const auto reach = reach_back(v.begin(), end, count, text_bytes);
                if (!reach.decided && !t.whole) return std::nullopt;  // the tail ends first
                for (auto it = reach.used; it != end; ++it) fn(it->entry);
                return true;
            });
        if (answered) return;
    }
    for (const auto& e : recent_from_db(customer, before_key, count, text_bytes)) fn(e);
}

std::vector<HistoryEntry> HistoryStore::recent_from_db(std::string_view customer, std::string_view before_key,
                                                       std::size_t count, std::size_t text_bytes) const {
    std::vector<HistoryEntry> out;
    if (count == 0) return out;
    const std::string prefix = customer_prefix(customer);
    auto it = impl_->iter();
    seek_before(*it, prefix, before_key);
    std::size_t bytes = 0;
    for (; it->Valid() && out.size() < count; it->Prev()) {
        std::string_view k = view(it->key());
        if (k.substr(0, prefix.size()) != prefix) break;
        auto e = decode_entry(k, view(it->value()));
        if (!e) continue;
        bytes += text_size(*e);
        if (bytes > text_bytes) break;
        out.push_back(std::move(*e));
    }
    std::reverse(out.begin(), out.end());
    return out;
}

MessagePage HistoryStore::messages(std::string_view customer, const MessageQuery& q) const {
    MessagePage page;
    const std::string prefix = customer_prefix(customer);
    auto it = impl_->iter();
    seek_before(*it, prefix, q.before && q.before->substr(0, prefix.size()) == prefix ? *q.before : std::string());
    const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 1000);
    std::string last_key;
    for (; it->Valid(); it->Prev()) {
        std::string_view k = view(it->key());
        if (k.substr(0, prefix.size()) != prefix) break;
        auto e = decode_entry(k, view(it->value()));
        if (!e) continue;
        if (q.channel && e->channel_name != *q.channel) continue;
        if (q.conversation && e->conversation != *q.conversation) continue;
        if (page.entries.size() == limit) {
            page.next = last_key;
            break;
        }
        last_key = std::string(k);
        page.entries.push_back(std::move(*e));
    }
    return page;
}

std::vector<HistoryEntry> HistoryStore::all(std::string_view customer) const {
    std::vector<HistoryEntry> out;
    const std::string prefix = customer_prefix(customer);
    auto it = impl_->iter();
    for (it->Seek(prefix); it->Valid(); it->Next()) {
        std::string_view k = view(it->key());
        if (k.substr(0, prefix.size()) != prefix) break;
        if (auto e = decode_entry(k, view(it->value()))) out.push_back(std::move(*e));
    }
    return out;
}

std::vector<ConversationSummary> HistoryStore::conversations(std::string_view customer) const {
    std::vector<ConversationSummary> out;
    for (const auto& e : all(customer)) {
        auto c = std::find_if(out.begin(), out.end(), [&](const auto& s) { return s.id == e.conversation; });
        if (c == out.end()) {
            out.push_back({e.conversation, e.conversation_started_ms, e.at_ms, 0, {}});
            c = out.end() - 1;
        }
        c->last_ms = std::max(c->last_ms, e.at_ms);
        ++c->messages;
        if (std::find(c->channels.begin(), c->channels.end(), e.channel_name) == c->channels.end())
            c->channels.push_back(e.channel_name);
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.last_ms > b.last_ms; });
    return out;
}

bool HistoryStore::holds(std::string_view customer) const {
    const std::string prefix = customer_prefix(customer);
    auto it = impl_->iter();
    it->Seek(prefix);
    return it->Valid() && view(it->key()).substr(0, prefix.size()) == prefix;
}

Change HistoryStore::put(HistoryEntry e) {
    Change c{entry_key(e.customer, e.at_ms, e.id), encode(e)};
    impl_->check(impl_->db->Put(impl_->data_write, c.key, *c.value), "write");
    if (cache_) cache_->put(this, c.key, std::move(e));
    return c;
}

Tail HistoryStore::load_tail(std::string_view customer) const {
    Tail t;
    const std::string prefix = customer_prefix(customer);
    auto it = impl_->iter();
    seek_before(*it, prefix, {});
    // As many as TailCache::trim() keeps: up to keep_entries, or up to the one that overflows
    // the text budget; whole when the customer's entries end first.
    std::size_t bytes = 0;
    t.whole = true;
    for (; it->Valid(); it->Prev()) {
        std::string_view k = view(it->key());
        if (k.substr(0, prefix.size()) != prefix) break;
        auto e = decode_entry(k, view(it->value()));
        if (!e) continue;
        if (t.entries.size() == cache_->keep_entries() || bytes > cache_->keep_text_bytes()) {
            t.whole = false;
            break;
        }
        bytes += text_size(*e);
        t.entries.push_back(CachedEntry{std::string(k), std::move(*e)});
    }
    std::reverse(t.entries.begin(), t.entries.end());
    t.state = state_from_db(customer);
    return t;
}

bool HistoryStore::absorbed(std::string_view survivor, std::string_view alias) const {
    std::string v;
    rocksdb::Status st = impl_->db->Get(rocksdb::ReadOptions(), absorbed_key(survivor, alias), &v);
    if (st.IsNotFound()) return false;
    impl_->check(st, "read");
    return true;
}

Change HistoryStore::mark_absorbed(std::string_view survivor, std::string_view alias) {
    Change c{absorbed_key(survivor, alias), std::string("1")};
    impl_->check(impl_->db->Put(impl_->data_write, c.key, *c.value), "write");
    return c;
}

std::optional<std::string> HistoryStore::state(std::string_view customer) const {
    if (cache_) {
        auto cached = cache_->read<std::optional<std::string>>(
            this, customer, [&] { return load_tail(customer); },
            [](const Tail& t) { return std::optional<std::optional<std::string>>(t.state); });
        if (cached) return std::move(*cached);
    }
    return state_from_db(customer);
}

std::optional<std::string> HistoryStore::state_from_db(std::string_view customer) const {
    std::string v;
    rocksdb::Status st = impl_->db->Get(rocksdb::ReadOptions(), state_key(customer), &v);
    if (st.IsNotFound()) return std::nullopt;
    impl_->check(st, "read");
    return v;
}

Change HistoryStore::put_state(std::string_view customer, std::string value) {
    Change c{state_key(customer), std::move(value)};
    impl_->check(impl_->db->Put(impl_->data_write, c.key, *c.value), "write");
    if (cache_) cache_->set_state(this, customer, c.value);
    return c;
}

Change HistoryStore::remove(std::string_view key) {
    impl_->check(impl_->db->Delete(impl_->data_write, slice(key)), "write");
    forget(key);
    return Change{std::string(key), std::nullopt};
}

std::vector<Change> HistoryStore::erase_customer(std::string_view customer) {
    std::vector<Change> out;
    rocksdb::WriteBatch b;
    auto it = impl_->iter();
    for (const std::string& prefix : {customer_prefix(customer), absorbed_key(customer, "")}) {
        for (it->Seek(prefix); it->Valid(); it->Next()) {
            std::string_view k = view(it->key());
            if (k.substr(0, prefix.size()) != prefix) break;
            b.Delete(it->key());
            out.push_back({std::string(k), std::nullopt});
        }
    }
    if (state_from_db(customer)) {
        b.Delete(state_key(customer));
        out.push_back({state_key(customer), std::nullopt});
    }
    impl_->check(impl_->db->Write(impl_->data_write, &b), "erase");
    if (cache_) cache_->drop(customer);
    return out;
}

void HistoryStore::compact_customer(std::string_view customer) {
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    // Each range [prefix, prefix + 0xff): the customer's entries, absorbed markers and state.
    for (std::string prefix : {customer_prefix(customer), absorbed_key(customer, ""), state_key(customer)}) {
        std::string end = prefix;
        end.push_back('\xff');
        rocksdb::Slice b(prefix), e(end);
        impl_->check(impl_->db->CompactRange(o, &b, &e), "compact");
    }
}

std::vector<Change> HistoryStore::purge_before(std::int64_t cutoff_ms, std::string& cursor, std::size_t max_scan) {
    std::vector<Change> out;
    rocksdb::WriteBatch b;
    auto it = impl_->iter();
    it->Seek(cursor.empty() ? std::string(kEntryPrefix) : cursor);
    std::size_t scanned = 0;
    for (; it->Valid() && scanned < max_scan; it->Next(), ++scanned) {
        std::string_view k = view(it->key());
        if (k.substr(0, kEntryPrefix.size()) != kEntryPrefix) {
            scanned = 0;
            break;  // past the entries
        }
        auto at = at_of_key(k);
        if (at && *at < cutoff_ms) {
            b.Delete(it->key());
            out.push_back({std::string(k), std::nullopt});
        }
    }
    if (it->Valid() && view(it->key()).substr(0, kEntryPrefix.size()) == kEntryPrefix)
        cursor = std::string(view(it->key()));
    else
        cursor.clear();
    impl_->check(impl_->db->Write(impl_->data_write, &b), "purge");
    for (const auto& c : out) forget(c.key);
    return out;
}

}  // namespace omnibus::pipeline::history
