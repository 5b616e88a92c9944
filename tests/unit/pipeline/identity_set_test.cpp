// What an inbound message links automatically: the channel identity first, then platform
// identities and verified claims of the configured kinds, normalized, each once, bounded;
// nothing guessed.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "pipeline/identity/identity_set.h"

using namespace omnibus;
using namespace omnibus::pipeline::identity;
using omnibus::pipeline::IdentitySettings;
using Strings = std::vector<std::string>;

namespace {

envelope::Envelope inbound(std::string channel_type, std::string channel_name, std::string sender_id) {
    envelope::Envelope env;
    env.channel = {std::move(channel_type), std::move(channel_name)};
    env.direction = envelope::Direction::inbound;
    env.sender.id = std::move(sender_id);
    return env;
}

envelope::Envelope webchat(std::string channel_name, envelope::VerifiedClaims claims) {
    envelope::Envelope env = inbound("webchat", std::move(channel_name), "webchat:v-7f3a9c");
    env.sender.verified_claims = std::move(claims);
    return env;
}

IdentitySet identities_of(const IdentitySetBuilder& b, const envelope::Envelope& env) {
    auto r = b.identities_of(env);
    if (!r) FAIL(r.error().to_string());
    for (const auto& ident : r->identities) CHECK(check_identity(ident).ok());
    return std::move(r).value();
}

}  // namespace

TEST_CASE("a WhatsApp sender links the phone number WhatsApp showed") {
    const IdentitySetBuilder b{IdentitySettings{}};
    auto env = inbound("whatsapp", "whatsapp-eu", "whatsapp:16505551234");
    env.sender.display_name = "Maria Silva";  // never an identity
    env.sender.identities = {"phone:+16505551234", "whatsapp_bsuid:US.13491208655302741918"};
    env.sender.verified_claims = envelope::VerifiedClaims{std::nullopt, std::nullopt, "+16505551234"};

    const IdentitySet set = identities_of(b, env);
    CHECK(set.identities == Strings{"whatsapp:16505551234", "phone:+16505551234"});
    CHECK(set.dropped == 0);
    CHECK(set.invalid == 0);
}

TEST_CASE("a platform phone that is not valid E.164 is kept as the platform gave it") {
    IdentitySettings s;
    s.default_region = "DE";
    const IdentitySetBuilder b{s};
    auto env = inbound("whatsapp", "whatsapp-eu", "whatsapp:15551234567");
    // 555-1234 is no valid US number; the national form is not read in DE (it is not a claim).
    env.sender.identities = {"phone:+15551234567", "phone:015123456789", "phone:+49(151)23456789"};

    const IdentitySet set = identities_of(b, env);
    CHECK(set.identities ==
          Strings{"whatsapp:15551234567", "phone:+15551234567", "phone:015123456789", "phone:+49(151)23456789"});
    CHECK(set.invalid == 0);
}

TEST_CASE("a web chat visitor's verified claims link the shop id, the address and the number") {
    IdentitySettings s;
    s.channel_regions = {{"webchat-de", "DE"}};
    const IdentitySetBuilder b{s};
    const envelope::VerifiedClaims claims{"C-1042", "  Ana.Silva@Example.COM ", "0151 23456789"};

    SECTION("a national number is read in the channel's region") {
        const IdentitySet set = identities_of(b, webchat("webchat-de", claims));
        CHECK(set.identities ==
              Strings{"webchat:v-7f3a9c", "shop:C-1042", "email:Ana.Silva@example.com", "phone:+4915123456789"});
        CHECK(set.invalid == 0);
    }
    SECTION("without a region it is left out, never guessed") {
        const IdentitySet set = identities_of(b, webchat("webchat-intl", claims));
        CHECK(set.identities == Strings{"webchat:v-7f3a9c", "shop:C-1042", "email:Ana.Silva@example.com"});
        CHECK(set.invalid == 1);
    }
    SECTION("an international number needs no region") {
        auto intl = claims;
        intl.phone = "+55 11 98765-4321";
        const IdentitySet set = identities_of(b, webchat("webchat-intl", intl));
        CHECK(set.identities.back() == "phone:+5511987654321");
    }
}

TEST_CASE("the default region serves channels without their own, an explicit empty one opts out") {
    IdentitySettings s;
    s.default_region = "BR";
    s.channel_regions = {{"webchat-de", "DE"}, {"webchat-intl", ""}};
    const IdentitySetBuilder b{s};
    const envelope::VerifiedClaims claims{std::nullopt, std::nullopt, "(11) 98765-4321"};

    CHECK(identities_of(b, webchat("webchat-br", claims)).identities ==
          Strings{"webchat:v-7f3a9c", "phone:+5511987654321"});
    CHECK(identities_of(b, webchat("webchat-intl", claims)).identities == Strings{"webchat:v-7f3a9c"});
    const envelope::VerifiedClaims berlin{std::nullopt, std::nullopt, "030 12345678"};
    CHECK(identities_of(b, webchat("webchat-de", berlin)).identities ==
          Strings{"webchat:v-7f3a9c", "phone:+493012345678"});
}

TEST_CASE("the email rules of the settings apply to claimed addresses") {
    IdentitySettings s;
    s.email_lowercase_local_part = true;
    s.email_fold_gmail = true;
    const IdentitySetBuilder b{s};
    const IdentitySet set = identities_of(b, webchat("webchat", {std::nullopt, "Ana.Silva+shoes@GoogleMail.com", std::nullopt}));
    CHECK(set.identities == Strings{"webchat:v-7f3a9c", "email:anasilva@gmail.com"});
}

TEST_CASE("kinds not in auto_link are left out, except the channel identity") {
    IdentitySettings s;
    s.auto_link = {"email"};
    const IdentitySetBuilder b{s};
    auto env = inbound("whatsapp", "whatsapp-eu", "whatsapp:16505551234");
    env.sender.identities = {"phone:+16505551234", "email:maria@example.com", "shop:C-9"};
    env.sender.verified_claims = envelope::VerifiedClaims{"C-9", "maria@example.com", "+16505551234"};
    CHECK(identities_of(b, env).identities == Strings{"whatsapp:16505551234", "email:maria@example.com"});

    s.auto_link = {};
    const IdentitySetBuilder none{s};
    const IdentitySet only = identities_of(none, env);
    CHECK(only.identities == Strings{"whatsapp:16505551234"});
    CHECK(only.invalid == 0);
}

TEST_CASE("claims that do not check are dropped and counted") {
    const IdentitySetBuilder b{IdentitySettings{}};
    SECTION("an address that is not one") {
        for (const char* bad : {"not-an-address", "ana@localhost", "ana silva@example.com", "@example.com"}) {
            const IdentitySet set = identities_of(b, webchat("webchat", {std::nullopt, bad, std::nullopt}));
            CHECK(set.identities == Strings{"webchat:v-7f3a9c"});
            CHECK(set.invalid == 1);
        }
    }
    SECTION("a number libphonenumber does not accept") {
        for (const char* bad : {"+1 555 123 4567", "+999 123456789", "12", "call me", "+"}) {
            const IdentitySet set = identities_of(b, webchat("webchat", {std::nullopt, std::nullopt, bad}));
            CHECK(set.identities == Strings{"webchat:v-7f3a9c"});
            CHECK(set.invalid == 1);
        }
    }
    SECTION("a shop id that is no identity value") {
        const IdentitySet set = identities_of(b, webchat("webchat", {"C 1042", "ana@example.com", std::nullopt}));
        CHECK(set.identities == Strings{"webchat:v-7f3a9c", "email:ana@example.com"});
        CHECK(set.invalid == 1);
    }
    SECTION("a platform identity that is no identity string") {
        auto env = inbound("messenger", "messenger-shop", "messenger:1048576:7209876543");
        env.sender.identities = {"email:ana\x01@example.com", "phone:+20 100 123 4567", "email:ana@example.com"};
        const IdentitySet set = identities_of(b, env);
        CHECK(set.identities == Strings{"messenger:1048576:7209876543", "email:ana@example.com"});
        CHECK(set.invalid == 2);
    }
}

TEST_CASE("each identity appears once, the channel identity first") {
    const IdentitySetBuilder b{IdentitySettings{}};
    auto env = inbound("email", "support-mail", "email:ana@example.com");
    env.sender.identities = {"phone:+16505551234", "email:ana@example.com", "phone:+16505551234", "shop:C-1"};
    env.sender.verified_claims = envelope::VerifiedClaims{"C-1", "ana@EXAMPLE.com", "+1 (650) 555-1234"};
    const IdentitySet set = identities_of(b, env);
    CHECK(set.identities == Strings{"email:ana@example.com", "phone:+16505551234", "shop:C-1"});
    CHECK(set.dropped == 0);
}

TEST_CASE("an E.164 platform phone is named in canonical form") {
    const IdentitySetBuilder b{IdentitySettings{}};
    auto env = inbound("messenger", "messenger-shop", "messenger:1048576:7209876543");
    // The German trunk prefix written after the country code: libphonenumber names the number.
    env.sender.identities = {"phone:+4903012345678"};
    env.sender.verified_claims = envelope::VerifiedClaims{std::nullopt, std::nullopt, "+49 30 12345678"};
    CHECK(identities_of(b, env).identities == Strings{"messenger:1048576:7209876543", "phone:+493012345678"});
}

TEST_CASE("a message without a valid channel identity is an error to dead-letter") {
    const IdentitySetBuilder b{IdentitySettings{}};
    auto env = inbound("webchat", "webchat", "");
    auto r = b.identities_of(env);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == envelope::ErrorCode::missing_field);
    CHECK(r.error().field == "sender.id");

    for (const std::string& bad : Strings{"v-7f3a9c", ":v-7f3a9c", "WebChat:v-7f3a9c", "webchat:v 7f3a9c", "webchat:",
                                          "webchat:" + std::string(kMaxIdentityBytes, 'a')}) {
        env.sender.id = bad;
        auto e = b.identities_of(env);
        REQUIRE_FALSE(e);
        CHECK(e.error().code == envelope::ErrorCode::bad_value);
        CHECK(e.error().field == "sender.id");
        CHECK_THAT(e.error().to_string(), Catch::StartsWith("sender.id: not a channel identity: "));
    }

    auto outbound = inbound("webchat", "webchat", "webchat:v-7f3a9c");
    outbound.direction = envelope::Direction::outbound;
    auto o = b.identities_of(outbound);
    REQUIRE_FALSE(o);
    CHECK(o.error().field == "direction");
}

TEST_CASE("a message links at most kMaxIdentitiesPerMessage identities, the rest is counted") {
    const IdentitySetBuilder b{IdentitySettings{}};
    auto env = inbound("webchat", "webchat", "webchat:v-7f3a9c");
    for (int i = 0; i < 40; ++i) env.sender.identities.push_back("email:u" + std::to_string(i) + "@example.com");
    env.sender.identities.push_back("email:u3@example.com");  // a duplicate past the bound is no extra
    env.sender.verified_claims = envelope::VerifiedClaims{"C-1", std::nullopt, "+16505551234"};

    const IdentitySet set = identities_of(b, env);
    REQUIRE(set.identities.size() == kMaxIdentitiesPerMessage);
    CHECK(set.identities.front() == "webchat:v-7f3a9c");
    CHECK(set.identities[1] == "email:u0@example.com");
    CHECK(set.identities.back() == "email:u14@example.com");
    CHECK(set.dropped == 25 + 2);  // u15..u39 and the two claims
}

TEST_CASE("concurrent calls give the answers of a single one") {
    IdentitySettings s;
    s.default_region = "DE";
    const IdentitySetBuilder b{s};
    std::vector<envelope::Envelope> envs;
    for (int i = 0; i < 8; ++i) {
        auto env = webchat("webchat", {"C-" + std::to_string(i), "Ana" + std::to_string(i) + "@Example.com",
                                       "0151 2345678" + std::to_string(i)});
        env.sender.identities = {"phone:+1650555123" + std::to_string(i)};
        envs.push_back(std::move(env));
    }
    std::vector<IdentitySet> first;
    for (const auto& env : envs) first.push_back(identities_of(b, env));
    CHECK(first[4].identities == Strings{"webchat:v-7f3a9c", "phone:+16505551234", "shop:C-4",
                                         "email:Ana4@example.com", "phone:+4915123456784"});

    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int round = 0; round < 500; ++round)
                for (std::size_t k = 0; k < envs.size(); ++k) {
                    auto r = b.identities_of(envs[k]);
                    if (!r || r->identities != first[k].identities) ++wrong;
                }
        });
    for (auto& t : threads) t.join();
    CHECK(wrong == 0);
}
