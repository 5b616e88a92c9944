// HistoryStore: one partition's conversation history, in RocksDB, kept equal to that
// partition of the history changelog topic.
//
// What it holds: every message (inbound and outbound) of the customers whose records land on
// this partition of <prefix>pipeline.customer, keyed so that one customer's messages are
// contiguous and in time order: "h/<customer>/<at_ms, 16 hex digits>/<envelope id>". The key
// is a function of the message alone, so writing a message twice writes the same key (that
// is the dedup: a reprocessed message finds itself). The conversation a message belongs to
// is stored with it; the customer's conversation state is their newest entry.
//
// Besides entries: "a/<survivor>/<alias>" records that the survivor of a merge asked for the
// alias's history (history_commands.h), so it is asked once; "s/<customer>" holds the
// customer's conversation state for routing (who owns the conversation: AI or a human agent),
// an opaque value to the store.
//
// Changelog: every write returns the Change to produce to the changelog partition (same key,
// same value, or a tombstone for a delete). The caller produces it and the store never does
// I/O besides RocksDB. Restoring is apply_changelog() over the partition's records.
//
// Crash safety without a write-ahead log: data writes skip RocksDB's WAL. The checkpoint (the
// changelog offset the store matches) is written only by a clean close, after a flush, and is
// cleared with a synced write before the store is used again. A store found without a
// checkpoint may have lost writes or be ahead of its changelog, so it is wiped and restored
// from the changelog; one with a checkpoint reads the changelog from there.
//
// Reads of a customer's newest entries (find of a recent key, last, recent, state) are answered
// from a TailCache when one is given (tail_cache.h); every write keeps it equal to RocksDB.
//
// Threads: every method may be called from any thread (RocksDB is thread-safe); one
// read-modify-write sequence per customer at a time is the caller's business (the stage's
// consumer thread does all of them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/envelope.h"

namespace omnibus::pipeline::history {

// What history keeps of one message: enough for context, the admin API and rebuilding the
// routed message, not the platform payload.
struct HistoryEntry {
    std::string customer;
    std::int64_t at_ms = 0;  // received_at (inbound) or accepted_at (outbound), ms since the epoch
    std::string id;          // envelope id
    std::string conversation;
    std::int64_t conversation_started_ms = 0;
    envelope::Direction direction = envelope::Direction::inbound;
    std::string channel_type;
    std::string channel_name;
    std::string content_type;  // envelope ContentType name
    std::optional<std::string> subject;
    std::optional<std::string> text;  // at most kMaxTextBytes (cut at a UTF-8 boundary)
    std::uint32_t attachments = 0;
    std::string author;  // "customer", "ai", "agent:<id>"
    std::string platform_message_id;
    std::string sender;  // the channel identity it came from or went to

    friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

inline constexpr std::size_t kMaxTextBytes = 8192;

// A write to mirror on the changelog: value nullopt = tombstone.
struct Change {
    std::string key;
    std::optional<std::string> value;
    friend bool operator==(const Change&, const Change&) = default;
};

std::string entry_key(std::string_view customer, std::int64_t at_ms, std::string_view id);
std::string encode(const HistoryEntry& e);
std::optional<HistoryEntry> decode_entry(std::string_view key, std::string_view value);

// One entry of an envelope, text cut to kMaxTextBytes. `customer` and `conversation` as given.
HistoryEntry entry_of(const envelope::Envelope& env, std::string customer, std::string conversation,
                      std::int64_t conversation_started_ms);

struct MessageQuery {
    std::optional<std::string> channel;       // channel name
    std::optional<std::string> conversation;  // conversation id
    std::optional<std::string> before;        // page cursor: the key of the last entry of the previous page
    std::size_t limit = 50;
};

struct MessagePage {
    std::vector<HistoryEntry> entries;  // newest first
    std::optional<std::string> next;    // cursor of the next page, when there is one
};

struct ConversationSummary {
    std::string id;
    std::int64_t started_ms = 0;
    std::int64_t last_ms = 0;
    std::size_t messages = 0;
    std::vector<std::string> channels;  // names, in order of first use
};

class TailCache;
struct Tail;

class HistoryStore {
public:
    // Opens or creates the store at `path` (directories created). Throws std::runtime_error
    // naming the path and RocksDB's reason. `cache` (may be shared by several stores; null:
    // none) answers reads of recently active customers' newest entries.
    explicit HistoryStore(std::string path, std::shared_ptr<TailCache> cache = nullptr);
    ~HistoryStore();
    HistoryStore(const HistoryStore&) = delete;
    HistoryStore& operator=(const HistoryStore&) = delete;

    // ---- checkpoint and restore ----
    std::optional<std::int64_t> checkpoint() const;  // the next changelog offset to apply
    // Flushes everything to disk, then records `next_offset` (synced).
    void write_checkpoint(std::int64_t next_offset);
    void clear_checkpoint();  // synced: from now on a crash means wipe and restore
    void wipe();              // every key deleted
    // Applies changelog records as they are (puts and tombstones), in order.
    void apply_changelog(std::span<const Change> changes);

    // ---- reads ----
    std::optional<HistoryEntry> find(std::string_view key) const;
    std::optional<HistoryEntry> last(std::string_view customer) const;
    // Of the newest entry, what opens or continues a conversation (every message asks; no
    // copy of the entry's text).
    struct ConversationTip {
        std::int64_t at_ms = 0;
        std::string conversation;
        std::int64_t conversation_started_ms = 0;
        friend bool operator==(const ConversationTip&, const ConversationTip&) = default;
    };
    std::optional<ConversationTip> last_conversation(std::string_view customer) const;
    // The customer's newest entries before `key` (all of them when key is empty), oldest
    // first: at most `count`, and of those only as many as fit `text_bytes` (newest kept).
    std::vector<HistoryEntry> recent(std::string_view customer, std::string_view before_key, std::size_t count,
                                     std::size_t text_bytes) const;
    // The same entries, each handed to `fn` in the same order without a copy. `fn` may run under
    // the cache's lock: it must not call the store.
    void recent_each(std::string_view customer, std::string_view before_key, std::size_t count,
                     std::size_t text_bytes, const std::function<void(const HistoryEntry&)>& fn) const;
    MessagePage messages(std::string_view customer, const MessageQuery& q) const;
    std::vector<ConversationSummary> conversations(std::string_view customer) const;
    std::vector<HistoryEntry> all(std::string_view customer) const;  // oldest first
    bool holds(std::string_view customer) const;
    // Whether `survivor` has asked for `alias`'s history already (after a merge).
    bool absorbed(std::string_view survivor, std::string_view alias) const;

    // ---- writes (each returns what to mirror on the changelog) ----
    Change put(HistoryEntry e);  // a temporary moves into the tail cache
    Change remove(std::string_view key);
    Change mark_absorbed(std::string_view survivor, std::string_view alias);
    std::optional<std::string> state(std::string_view customer) const;
    Change put_state(std::string_view customer, std::string value);
    std::vector<Change> erase_customer(std::string_view customer);
    // After erase_customer for a right-to-erasure request: compacts the customer's key ranges
    // (memtable flushed, every file holding them rewritten down to the bottom level), so the
    // deleted entries' values leave the store's files, not only its answers. Keys may still
    // show in the MANIFEST's file boundaries until it rolls over. Blocks while it compacts.
    void compact_customer(std::string_view customer);
    // Entries older than `cutoff_ms`: scans at most `max_scan` entries from `cursor` (a key;
    // "" = the start) and sets it to where the next call goes on, "" once the scan is through.
    std::vector<Change> purge_before(std::int64_t cutoff_ms, std::string& cursor, std::size_t max_scan);

    const std::string& path() const { return path_; }

private:
    struct Impl;
    // The customer's newest entries and state from RocksDB, as a TailCache keeps them.
    Tail load_tail(std::string_view customer) const;
    std::vector<HistoryEntry> recent_from_db(std::string_view customer, std::string_view before_key,
                                             std::size_t count, std::size_t text_bytes) const;
    std::optional<std::string> state_from_db(std::string_view customer) const;
    void forget(std::string_view key);  // drops the cached tail of the key's customer

    std::string path_;
    std::unique_ptr<Impl> impl_;
    std::shared_ptr<TailCache> cache_;
};

}  // namespace omnibus::pipeline::history
