// Phone numbers to E.164 with libphonenumber, for `phone:<E.164>` identities.
// Invalid numbers are never guessed: nullopt, and the caller keeps only what
// the platform said (e.g. `whatsapp:<wa_id>`).
//
// libphonenumber (Debian 12, ICU regexps) spends 10-35 µs to parse and
// validate one number, a third of the per-webhook budget, so results are
// memoised in a small fixed-size table inside this object (no allocation;
// customers send several messages, so most look-ups hit). wa_ids and written
// numbers of up to kMaxTextKey bytes share the table, told apart by a tag.
//
// Thread-safety: every method may be called from any thread; the memo table
// is split into shards, each behind its own mutex.
// Used by the WhatsApp codec and by the identity pipeline.
#pragma once

#include <array>
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

    const std::string& default_region() const { return default_region_; }

    // Whether libphonenumber knows this region code ("DE", "BR", …).
    static bool is_supported_region(std::string_view region);

private:
    // Digits of an E.164 number: at most 15.
    static constexpr std::size_t kMaxDigits = 15;
    static constexpr std::size_t kShards = 16;
    static constexpr std::size_t kSlotsPerShard = 256;

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
    };
    struct Shard {
        std::mutex mu;
        std::array<Slot, kSlotsPerShard> slots;
    };

    std::optional<std::string> parse_uncached(std::string_view number, const char* region) const;
    // The answer for `key` in `out`, if the memo has it.
    bool recall(KeyKind kind, std::string_view key, std::optional<std::string>& out) const;
    void remember(KeyKind kind, std::string_view key, const std::optional<std::string>& e164) const;
    Shard& shard_of(std::uint64_t h) const { return (*memo_)[h % kShards]; }

    std::string default_region_;
    std::unique_ptr<std::array<Shard, kShards>> memo_;
};

}  // namespace omnibus::phone
