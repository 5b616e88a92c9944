// Phone numbers to E.164 with libphonenumber, for `phone:<E.164>` identities.
// Invalid numbers are never guessed: nullopt, and the caller keeps only what
// the platform said (e.g. `whatsapp:<wa_id>`).
//
// libphonenumber (Debian 12, ICU regexps) spends 10-35 µs to parse and
// validate one number, a third of the per-webhook budget, so results are
// memoised in a small fixed-size table inside this object (no allocation;
// customers send several messages, so most look-ups hit). wa_ids and written
// numbers of up to kMaxTextKey bytes share the table, told apart by a tag.
// A number may sit in any of the 4 ways of either of two sets (two hashes),
// the least recently used of those 8 slots is replaced: a direct-mapped table
// lost a third of 2,000 returning customers to collisions (two numbers in one
// slot evict each other on every message), one set of 4 still a tenth.
//
// Thread-safety: every method may be called from any thread; the memo table
// is split into shards, each behind its own mutex.
// Used by the WhatsApp codec and by the identity pipeline.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace omnibus::phone {

class PhoneNormalizer {
public:
    // `default_region`: ISO 3166-1 alpha-2 ("DE"), used only for numbers
    // written without a leading '+'; "" for none (such numbers are then invalid).
    // Throws std::invalid_argument for a region libphonenumber does not know.
    explicit PhoneNormalizer(std::string default_region = {});
    ~PhoneNormalizer();
    PhoneNormalizer(const PhoneNormalizer&) = delete;
    PhoneNormalizer& operator=(const PhoneNormalizer&) = delete;

    // A WhatsApp id (wa_id / `from`): the international number as digits
    // without '+'. "+<E.164>" when libphonenumber says it is a valid number.
    std::optional<std::string> from_wa_id(std::string_view wa_id) const;

    // Free text as people write it ("+1 (650) 555-1234", "030 1234567").
    // Numbers without '+' are read in the default region. Memoised when at
    // most kMaxTextKey bytes long (claims in every message of a web chat
    // session); longer texts are rare and parsed each time.
    std::optional<std::string> from_text(std::string_view text) const;

    static constexpr std::size_t kMaxTextKey = 24;
    // Numbers the memo can hold: 4096.
    static constexpr std::size_t kMemoSlots = 4096;

    const std::string& default_region() const { return default_region_; }

    // How many times libphonenumber was asked (the memo missed), since construction.
    std::uint64_t parses() const { return parses_.load(std::memory_order_relaxed); }

    // Whether libphonenumber knows this region code ("DE", "BR", …).
    static bool is_supported_region(std::string_view region);

private:
    // Digits of an E.164 number: at most 15.
    static constexpr std::size_t kMaxDigits = 15;
    static constexpr std::size_t kShards = 16;
    static constexpr std::size_t kWays = 4;
    static constexpr std::size_t kSetsPerShard = kMemoSlots / kShards / kWays;

    // The same digits mean different numbers as a wa_id and as text read in
    // the default region, so the kind of key is part of it.
    enum class KeyKind : std::uint8_t { wa_id = 1, text = 2 };

    struct Slot {
        std::uint64_t hash = 0;
        std::uint8_t key_len = 0;  // 0 = empty
        KeyKind kind = KeyKind::wa_id;
        bool valid = false;
        std::array<char, kMaxTextKey> key{};
        std::array<char, kMaxDigits + 1> e164{};  // "+" + digits
        std::uint8_t e164_len = 0;
        std::uint32_t used = 0;  // the shard's tick at the last hit or write: the oldest is replaced

        bool holds(KeyKind k, std::uint64_t h, std::string_view s) const {
            return key_len == s.size() && hash == h && kind == k && std::string_view(key.data(), key_len) == s;
        }
    };
    struct Shard {
        std::mutex mu;
        std::uint32_t tick = 0;
        std::array<Slot, kSetsPerShard * kWays> slots;
        // The two sets a hash may use (in this shard): 2 x kWays candidate slots.
        Slot* first_set(std::uint64_t h) { return &slots[((h / kShards) % kSetsPerShard) * kWays]; }
        Slot* second_set(std::uint64_t h) { return &slots[((h >> 40) % kSetsPerShard) * kWays]; }
    };

    std::optional<std::string> parse_uncached(std::string_view number, const char* region) const;
    // The answer for `key` in `out`, if the memo has it.
    bool recall(KeyKind kind, std::string_view key, std::optional<std::string>& out) const;
    void remember(KeyKind kind, std::string_view key, const std::optional<std::string>& e164) const;
    Shard& shard_of(std::uint64_t h) const { return (*memo_)[h % kShards]; }

    std::string default_region_;
    std::unique_ptr<std::array<Shard, kShards>> memo_;
    mutable std::atomic<std::uint64_t> parses_{0};
};

}  // namespace omnibus::phone
