// The identities an inbound message links automatically (see identity_set.h).
#include "pipeline/identity/identity_set.h"

#include <algorithm>

#include "phone/phone_normalizer.h"

namespace omnibus::pipeline::identity {
namespace {

using envelope::Error;
using envelope::ErrorCode;

constexpr std::string_view kPhonePrefix = "phone:";

bool all_digits(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "+<7-15 digits>", E.164's shape: PhoneNormalizer::from_wa_id reads exactly that (its memo
// key is the digits), so platform phones and claims of one customer share one memo entry.
bool is_e164_shaped(std::string_view s) {
    return s.size() >= 8 && s.size() <= 16 && s.front() == '+' && all_digits(s.substr(1));
}

// Appends identities in order, each once, up to kMaxIdentitiesPerMessage. The list is that
// short, so a linear search is cheaper than any set.
class Collector {
public:
    explicit Collector(IdentitySet& set) : set_(set) {}

    bool full() const { return set_.identities.size() >= kMaxIdentitiesPerMessage; }
    bool contains(std::string_view s) const {
        return std::find(set_.identities.begin(), set_.identities.end(), s) != set_.identities.end();
    }
    // Counted as dropped when the list is full and `s` is not in it yet.
    void add(std::string_view s) {
        if (contains(s)) return;
        if (full()) {
            ++set_.dropped;
            return;
        }
        set_.identities.emplace_back(s);
    }
    void add(std::string&& s) {
        if (contains(s)) return;
        if (full()) {
            ++set_.dropped;
            return;
        }
        set_.identities.push_back(std::move(s));
    }

private:
    IdentitySet& set_;
};

std::string join(std::string_view prefix, std::string_view value) {
    std::string s;
    s.reserve(prefix.size() + value.size());
    s += prefix;
    s += value;
    return s;
}

}  // namespace

IdentitySetBuilder::IdentitySetBuilder(const IdentitySettings& settings)
    : auto_link_(settings.auto_link),
      email_rules_{settings.email_lowercase_local_part, settings.email_fold_gmail} {
    link_phone_ = links("phone");
    link_email_ = links("email");
    link_shop_ = links("shop");

    normalizers_.push_back(std::make_unique<phone::PhoneNormalizer>());
    auto normalizer_for = [this](const std::string& region) -> const phone::PhoneNormalizer* {
        for (const auto& n : normalizers_)
            if (n->default_region() == region) return n.get();
        normalizers_.push_back(std::make_unique<phone::PhoneNormalizer>(region));
        return normalizers_.back().get();
    };
    default_phones_ = normalizer_for(settings.default_region);
    // An explicit "" for a channel means "no region here" (an international shop's channel
    // under a national default), so it does not fall back to default_region.
    for (const auto& [channel, region] : settings.channel_regions) channel_phones_.emplace(channel, normalizer_for(region));
}

IdentitySetBuilder::~IdentitySetBuilder() = default;

bool IdentitySetBuilder::links(std::string_view kind) const {
    return !kind.empty() && std::find(auto_link_.begin(), auto_link_.end(), kind) != auto_link_.end();
}

const phone::PhoneNormalizer& IdentitySetBuilder::phones_for(std::string_view channel_name) const {
    const auto it = channel_phones_.find(channel_name);
    return it == channel_phones_.end() ? *default_phones_ : *it->second;
}

envelope::Result<IdentitySet> IdentitySetBuilder::identities_of(const envelope::Envelope& env) const {
    if (env.direction != envelope::Direction::inbound)
        return Error{ErrorCode::bad_value, "direction", "identities link from inbound messages only"};
    const envelope::Participant& sender = env.sender;
    if (sender.id.empty()) return Error{ErrorCode::missing_field, "sender.id", "the message has no channel identity"};
    if (auto st = check_identity(sender.id); !st)
        return Error{st.error().code, "sender.id", "not a channel identity: " + st.error().message};

    IdentitySet set;
    set.identities.reserve(std::min(kMaxIdentitiesPerMessage, 1 + sender.identities.size() + 3));
    set.identities.push_back(sender.id);
    Collector out(set);

    // What the platform showed. A phone number is re-read only when it has E.164's shape
    // ('+' and 7-15 digits): then libphonenumber can only confirm it or name the same number
    // in canonical form. Any other spelling, or a number libphonenumber does not accept, stays
    // exactly as the platform gave it (never read in some region, never guessed).
    for (const std::string& ident : sender.identities) {
        const std::string_view kind = kind_of(ident);
        if (!links(kind)) continue;
        if (!check_identity(ident)) {
            ++set.invalid;
            continue;
        }
        if (kind == "phone" && !out.full()) {
            const std::string_view value = std::string_view(ident).substr(kPhonePrefix.size());
            if (is_e164_shaped(value)) {
                if (auto e164 = normalizers_.front()->from_wa_id(value.substr(1))) {
                    out.add(join(kPhonePrefix, *e164));
                    continue;
                }
            }
        }
        out.add(std::string_view(ident));
    }

    // What the platform (WhatsApp's verified number) or the shop's backend vouches for; the
    // connector checked the shop's signature before it set them.
    if (sender.verified_claims) {
        const envelope::VerifiedClaims& claims = *sender.verified_claims;
        auto claim = [&](std::string_view prefix, std::string_view value) {
            std::string ident = join(prefix, value);
            if (!check_identity(ident)) {
                ++set.invalid;
                return;
            }
            out.add(std::move(ident));
        };
        if (link_shop_ && claims.shop_customer_id) claim("shop:", *claims.shop_customer_id);
        if (link_email_ && claims.email) {
            if (auto address = normalize_email(*claims.email, email_rules_))
                claim("email:", *address);
            else
                ++set.invalid;
        }
        if (link_phone_ && claims.phone) {
            // With '+' as written; without, in the channel's region or not at all. from_text
            // would read an E.164-shaped claim the same way as from_wa_id does.
            const std::string_view claimed = *claims.phone;
            if (auto e164 = is_e164_shaped(claimed) ? normalizers_.front()->from_wa_id(claimed.substr(1))
                                                    : phones_for(env.channel.name).from_text(claimed))
                claim(kPhonePrefix, *e164);
            else
                ++set.invalid;
        }
    }
    return set;
}

}  // namespace omnibus::pipeline::identity
