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

// FNV-1a: stable, cheap, good enough to spread ≤15 digits over the table.
std::uint64_t hash_digits(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
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
    const PhoneNumberUtil& util = *PhoneNumberUtil::GetInstance();
    PhoneNumber parsed;
    if (util.Parse(std::string(number), region, &parsed) != PhoneNumberUtil::NO_PARSING_ERROR) return std::nullopt;
    if (!util.IsValidNumber(parsed)) return std::nullopt;
    std::string out;
    util.Format(parsed, PhoneNumberUtil::E164, &out);
    return out;
}

std::optional<std::string> PhoneNormalizer::from_wa_id(std::string_view wa_id) const {
    // E.164 allows at most 15 digits; the shortest valid numbers have 7+.
    if (wa_id.size() < 7 || wa_id.size() > kMaxDigits || !all_digits(wa_id)) return std::nullopt;

    const std::uint64_t h = hash_digits(wa_id);
    Shard& shard = (*memo_)[h % kShards];
    Slot& slot = shard.slots[(h / kShards) % kSlotsPerShard];
    {
        std::lock_guard lock(shard.mu);
        if (slot.key_len == wa_id.size() && slot.hash == h &&
            std::string_view(slot.key.data(), slot.key_len) == wa_id) {
            if (!slot.valid) return std::nullopt;
            return std::string(slot.e164.data(), slot.e164_len);
        }
    }

    std::string plus;
    plus.reserve(wa_id.size() + 1);
    plus += '+';
    plus += wa_id;
    std::optional<std::string> e164 = parse_uncached(plus, "ZZ");
    // Formatting cannot lengthen a number past E.164's 15 digits + '+'; be
    // safe anyway and leave out of the memo whatever would not fit.
    if (e164 && e164->size() > kMaxDigits + 1) return e164;

    std::lock_guard lock(shard.mu);
    slot.hash = h;
    slot.key_len = static_cast<std::uint8_t>(wa_id.size());
    wa_id.copy(slot.key.data(), wa_id.size());
    slot.valid = e164.has_value();
    slot.e164_len = e164 ? static_cast<std::uint8_t>(e164->size()) : 0;
    if (e164) e164->copy(slot.e164.data(), e164->size());
    return e164;
}

std::optional<std::string> PhoneNormalizer::from_text(std::string_view text) const {
    // Longer than any phone number written with spaces, dashes and an extension.
    if (text.empty() || text.size() > 64) return std::nullopt;
    std::size_t i = 0;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const bool international = i < text.size() && text[i] == '+';
    if (!international && default_region_.empty()) return std::nullopt;
    return parse_uncached(text, international ? "ZZ" : default_region_.c_str());
}

}  // namespace omnibus::phone
