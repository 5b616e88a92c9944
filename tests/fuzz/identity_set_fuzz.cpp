// libFuzzer target for what an inbound message links automatically (IdentitySetBuilder).
//
// Input: an envelope JSON body, as it comes off omnibus.inbound. When it decodes, its
// identity set is taken twice, under the default settings and under settings with regions,
// email folding and a narrower auto_link, and must hold what the identity log relies on:
// sender.id first, every entry a valid identity string, no entry twice, at most
// kMaxIdentitiesPerMessage, every entry after the first of a linked kind, and the same
// answer on a second call (the phone memo never changes an answer). The corpus in
// tests/fuzz/corpus/identity_set is replayed by the plain test "fuzz_replay: identity_set
// corpus".
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "envelope/envelope.h"
#include "pipeline/identity/identity_set.h"

namespace {

using namespace omnibus;
using namespace omnibus::pipeline::identity;

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "identity_set_fuzz: invariant broken: %s\n", what);
        std::abort();
    }
}

pipeline::IdentitySettings configured() {
    pipeline::IdentitySettings s;
    s.auto_link = {"phone", "email"};
    s.email_lowercase_local_part = true;
    s.email_fold_gmail = true;
    s.default_region = "DE";
    s.channel_regions = {{"webchat-br", "BR"}, {"webchat-intl", ""}, {"line-jp", "JP"}};
    return s;
}

void check(const IdentitySetBuilder& builder, const pipeline::IdentitySettings& settings,
           const envelope::Envelope& env) {
    auto r = builder.identities_of(env);
    if (!r) {
        require(!r.error().field.empty() && !r.error().message.empty(), "an error names field and problem");
        require(env.direction != envelope::Direction::inbound || !check_identity(env.sender.id),
                "only an outbound message or a bad sender.id is refused");
        return;
    }
    const auto& ids = r->identities;
    require(!ids.empty() && ids.front() == env.sender.id, "the channel identity comes first");
    require(ids.size() <= kMaxIdentitiesPerMessage, "the set is bounded");
    for (std::size_t i = 0; i < ids.size(); ++i) {
        require(check_identity(ids[i]).ok(), "every identity checks");
        require(std::find(ids.begin() + static_cast<std::ptrdiff_t>(i) + 1, ids.end(), ids[i]) == ids.end(),
                "no identity twice");
        if (i > 0) {
            const std::string_view kind = kind_of(ids[i]);
            require(std::find(settings.auto_link.begin(), settings.auto_link.end(), kind) != settings.auto_link.end(),
                    "only kinds in auto_link link");
        }
    }
    require(r->dropped == 0 || ids.size() == kMaxIdentitiesPerMessage, "nothing is dropped below the bound");
    auto again = builder.identities_of(env);
    require(again.ok() && again->identities == ids && again->dropped == r->dropped && again->invalid == r->invalid,
            "the same message gives the same set");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const pipeline::IdentitySettings defaults{};
    static const pipeline::IdentitySettings narrow = configured();
    static const IdentitySetBuilder by_default(defaults);
    static const IdentitySetBuilder by_config(narrow);

    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto env = envelope::decode_body(in);
    if (!env) return 0;
    check(by_default, defaults, *env);
    check(by_config, narrow, *env);
    return 0;
}
