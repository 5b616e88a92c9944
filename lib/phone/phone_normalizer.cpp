// E.164 normalisation on libphonenumber, memoised per wa_id (see the header).
#include "phone/phone_normalizer.h"

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

#include <set>
#include <stdexcept>

namespace omnibus::phone {
namespace {

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

bool all_digits(std::string_view s) {
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// FNV-1a: stable, cheap, good enough to spread short keys over the table.
std::uint64_t hash_key(std::uint8_t kind, std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    h ^= kind;
    h *= 1099511628211ULL;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace

PhoneNormalizer::PhoneNormalizer(std::string default_region)
    : default_region_(std::move(default_region)), memo_(std::make_unique<std::array<Shard, kShards>>()) {
    if (!default_region_.empty() && !is_supported_region(default_region_))
        throw std::invalid_argument("unknown phone region \"" + default_region_ +
                                    "\" (expected an ISO 3166-1 code such as DE)");
}

PhoneNormalizer::~PhoneNormalizer() = default;

bool PhoneNormalizer::is_supported_region(std::string_view region) {
    std::set<std::string> regions;
    PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
    return regions.count(std::string(region)) > 0;
}

std::optional<std::string> PhoneNormalizer::parse_uncached(std::string_view number, const char* region) const {
    parses_.fetch_add(1, std::memory_order_relaxed);
    const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
    PhoneNumber parsed;
    if (util.Parse(std::string(number), region, &parsed) != PhoneNumberUtil::NO_PARSING_ERROR) return std::nullopt;
    if (!util.IsValidNumber(parsed)) return std::nullopt;
    std::string out;
    util.Format(parsed, PhoneNumberUtil::E164, &out);
    return out;
}

bool PhoneNormalizer::recall(KeyKind kind, std::string_view key, std::optional<std::string>& out) const {
    if (key.empty() || key.size() > kMaxTextKey) return false;
    const std::uint64_t h = hash_key(static_cast<std::uint8_t>(kind), key);
    Shard& shard = shard_of(h);
    std::lock_guard lock(shard.mu);
    Slot* sets[2] = {shard.first_set(h), shard.second_set(h)};
    for (std::size_t w = 0; w < 2 * kWays; ++w) {
        Slot& slot = sets[w / kWays][w % kWays];
        if (!slot.holds(kind, h, key)) continue;
        slot.used = ++shard.tick;
        if (slot.valid)
            out.emplace(slot.e164.data(), slot.e164_len);
        else
            out.reset();
        return true;
    }
    return false;
}

void PhoneNormalizer::remember(KeyKind kind, std::string_view key, const std::optional<std::string>& e164) const {
    // Formatting cannot lengthen a number past E.164's 15 digits + '+'; be
    // safe anyway and leave out of the memo whatever would not fit.
    if (key.empty() || key.size() > kMaxTextKey || (e164 && e164->size() > kMaxDigits + 1)) return;
    const std::uint64_t h = hash_key(static_cast<std::uint8_t>(kind), key);
    Shard& shard = shard_of(h);
    std::lock_guard lock(shard.mu);
    Slot* sets[2] = {shard.first_set(h), shard.second_set(h)};
    // The same key (another thread parsed it too), else an empty slot, else the least recently used.
    Slot* slot = &sets[0][0];
    for (std::size_t w = 0; w < 2 * kWays; ++w) {
        Slot& s = sets[w / kWays][w % kWays];
        if (s.holds(kind, h, key)) {
            slot = &s;
            break;
        }
        if (slot->key_len != 0 && (s.key_len == 0 || s.used < slot->used)) slot = &s;
    }
    slot->hash = h;
    slot->key_len = static_cast<std::uint8_t>(key.size());
    slot->kind = kind;
    key.copy(slot->key.data(), key.size());
    slot->valid = e164.has_value();
    slot->e164_len = e164 ? static_cast<std::uint8_t>(e164->size()) : 0;
    if (e164) e164->copy(slot->e164.data(), e164->size());
    slot->used = ++shard.tick;
}

std::optional<std::string> PhoneNormalizer::from_wa_id(std::string_view wa_id) const {
    // E.164 allows at most 15 digits; the shortest valid numbers have 7+.
    if (wa_id.size() < 7 || wa_id.size() > kMaxDigits || !all_digits(wa_id)) return std::nullopt;
    std::optional<std::string> e164;
    if (recall(KeyKind::wa_id, wa_id, e164)) return e164;

    std::string plus;
    plus.reserve(wa_id.size() + 1);
    plus += '+';
    plus += wa_id;
    e164 = parse_uncached(plus, "ZZ");
    remember(KeyKind::wa_id, wa_id, e164);
    return e164;
}

std::optional<std::string> PhoneNormalizer::from_text(std::string_view text) const {
    // Longer than any phone number written with spaces, dashes and an extension.
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::size_t i = 0;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const bool international = i < text.size() && text[i] == '+';
    if (!international && default_region_.empty()) return std::nullopt;
    std::optional<std::string> e164;
    if (recall(KeyKind::text, text, e164)) return e164;
    e164 = parse_uncached(text, international ? "ZZ" : default_region_.c_str());
    remember(KeyKind::text, text, e164);
    return e164;
}

}  // namespace omnibus::phone
