// Which identities an inbound message links automatically: the identity list of its
// `observe` request (docs/pipeline.md, "What links automatically").
//
// The channel identity (sender.id) always comes first: it is what the message is keyed by.
// After it, only kinds listed in IdentitySettings::auto_link, and only from where the
// platform or the shop vouches for them (sender.identities, sender.verified_claims), never
// from the text: a wrong link merges two people's histories, a missing link costs only a
// second customer record that an agent can merge later. So whatever does not check is left
// out, never repaired by guessing.
//
// Thread-safety: identities_of() is const and may be called from any number of threads at
// once; the only shared state is the phone normalizers' memo, which has its own locks.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/envelope.h"
#include "pipeline/identity/identity.h"
#include "pipeline/pipeline_settings.h"

namespace omnibus::phone {
class PhoneNormalizer;
}

namespace omnibus::pipeline::identity {

// At most this many identities per message, the channel identity included. Connectors show
// two or three; a message with more is malformed or hostile, and each one it links stays
// with the customer (kMaxIdentitiesPerCustomer), so the rest is left out.
inline constexpr std::size_t kMaxIdentitiesPerMessage = 16;
static_assert(kMaxIdentitiesPerMessage * 50 <= kMaxIdentitiesPerCustomer,
              "one message must not be able to fill a customer");

struct IdentitySet {
    // sender.id first, then the identities that link automatically; distinct, each passes
    // check_identity().
    std::vector<std::string> identities;
    // Distinct linkable identities left out because of kMaxIdentitiesPerMessage.
    std::size_t dropped = 0;
    // Linkable identities or claims left out because they did not check: an address
    // normalize_email() refuses, a claimed number libphonenumber does not accept (or one
    // written without '+' on a channel without a region), a string check_identity() refuses.
    std::size_t invalid = 0;
};

class IdentitySetBuilder {
public:
    // Throws std::invalid_argument for a region libphonenumber does not know (at start-up;
    // the config loader checks regions first, so this is a programming error).
    explicit IdentitySetBuilder(const IdentitySettings& settings);
    ~IdentitySetBuilder();
    IdentitySetBuilder(const IdentitySetBuilder&) = delete;
    IdentitySetBuilder& operator=(const IdentitySetBuilder&) = delete;

    // The identities an `observe` for `env` carries. An error (to dead-letter, with its
    // field and message) when `env` is not inbound or sender.id is missing or is not a
    // valid identity string.
    envelope::Result<IdentitySet> identities_of(const envelope::Envelope& env) const;

private:
    bool links(std::string_view kind) const;
    // Reads claimed numbers written without '+' in the channel's region, if it has one.
    const phone::PhoneNormalizer& phones_for(std::string_view channel_name) const;

    std::vector<std::string> auto_link_;
    bool link_phone_ = false;
    bool link_email_ = false;
    bool link_shop_ = false;
    EmailRules email_rules_;
    // One normalizer (and so one memo) per distinct region; [0] has no region and reads
    // only international numbers.
    std::vector<std::unique_ptr<phone::PhoneNormalizer>> normalizers_;
    const phone::PhoneNormalizer* default_phones_ = nullptr;
    std::map<std::string, const phone::PhoneNormalizer*, std::less<>> channel_phones_;
};

}  // namespace omnibus::pipeline::identity
