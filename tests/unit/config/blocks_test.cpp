// Lists of blocks dispatched by `type` (the `channels:` list): each block's
// spec comes from the caller's resolver; names are unique and URL-safe.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "config/loader.h"
#include "example_schema.h"

using namespace omnibus;
using namespace omnibus::config;
using namespace omnibus::config::testing;

TEST_CASE("each block is resolved against the spec of its type") {
    const char* yaml = R"(instance: a
kafka: {embedded: true}
channels:
  - name: wa-main
    type: whatsapp
    app_secret: ${env:WA_SECRET}
    phone_number_id: "1234"
  - name: support
    type: email
    imap: imap.example.com:993
)";
    LoadResult r = load(yaml, with_env({{"WA_SECRET", "s"}}));
    INFO(r.report());
    REQUIRE(r.ok());
    const std::vector<Section>& channels = r.config->blocks("channels");
    REQUIRE(channels.size() == 2);

    CHECK(channels[0].name() == "wa-main");
    CHECK(channels[0].type() == "whatsapp");
    CHECK(channels[0].path() == "channels.wa-main");
    CHECK(channels[0].position() == Position{4, 5});
    CHECK(channels[0].secret("app_secret").reveal() == "s");
    CHECK(channels[0].string("phone_number_id") == "1234");
    CHECK(channels[0].duration("window") == std::chrono::hours(24));

    CHECK(channels[1].name() == "support");
    CHECK(channels[1].type() == "email");
    CHECK(channels[1].address("imap") == Address{"imap.example.com", 993});
    CHECK(channels[1].duration("poll") == std::chrono::minutes(1));
    CHECK(channels[1].strings("folders") == std::vector<std::string>{"INBOX"});
    // A block only has the options of its own type.
    CHECK_THROWS_AS(channels[1].secret("app_secret"), std::logic_error);
}

TEST_CASE("block errors: unknown type, duplicate, missing and invalid names, unknown keys, non-mappings") {
    const char* yaml = R"(instance: a
kafka: {embedded: true}
channels:
  - name: wa
    type: whatsap
    bogus: 1
  - name: wa
    type: email
    imap: h:1
  - type: email
    imap: h:2
  - name: Bad Name
    type: email
    imap: h:3
  - name: mail
    type: email
    imap: h:4
    pol: 5s
  - just a string
  - name: x
  - name: wa2
    type: [email]
    type: email
)";
    LoadResult r = load(yaml);
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:5:11: channels.wa.type: unknown type 'whatsap'; did you mean 'whatsapp'? "
        "(known types: 'email', 'whatsapp')",
        "omnibus.yaml:7:11: channels[1].name: 'wa' is already the name of the block at 4:11",
        "omnibus.yaml:10:5: missing required option 'channels[2].name'",
        "omnibus.yaml:12:11: channels[3].name: expected 1 to 63 characters of a-z, 0-9, '_' and '-', starting with "
        "a letter or digit (names appear in URLs), got 'Bad Name'",
        "omnibus.yaml:18:5: unknown option 'channels.mail.pol'; did you mean 'poll'?",
        "omnibus.yaml:19:5: channels[5]: expected a mapping with 'name' and 'type', got 'just a string'",
        "omnibus.yaml:20:5: missing required option 'channels.x.type'",
        "omnibus.yaml:22:11: channels.wa2.type: expected a string, got a list",
        "omnibus.yaml:23:5: duplicate key 'channels[7].type'; first set at 22:5",
    });
}

TEST_CASE("a block list must be a list, and may be empty") {
    LoadResult r = load("instance: a\nkafka: {embedded: true}\nchannels: {a: 1}\n");
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:3:11: channels: expected a list of blocks, each a mapping with 'name' and 'type', got a mapping"});

    for (const char* empty : {"channels:\n", "channels: []\n"}) {
        r = load(std::string(kMinimal) + empty);
        INFO(r.report());
        REQUIRE(r.ok());
        CHECK(r.config->blocks("channels").empty());
        CHECK(r.config->has("channels"));
    }
}

TEST_CASE("block names: 1 to 63 of [a-z0-9_-], starting with a letter or digit") {
    auto load_named = [](const std::string& name) {
        return load(std::string(kMinimal) + "channels:\n  - name: \"" + name +
                    "\"\n    type: email\n    imap: h:1\n");
    };
    for (const std::string& good : std::vector<std::string>{"a", "0", "web-chat_2", std::string(63, 'x')}) {
        INFO(good);
        CHECK(load_named(good).ok());
    }
    for (const std::string& bad : std::vector<std::string>{"", "-a", "_a", "Web", "a.b", "a/b", std::string(64, 'x')}) {
        INFO(bad);
        CHECK_FALSE(load_named(bad).ok());
    }
}

TEST_CASE("a block type spec may not declare name or type itself") {
    static const Spec broken = [] {
        Spec s("broken", "declares name");
        s.string("name");
        return s;
    }();
    Spec root("root", "");
    root.blocks("items", BlockTypes{[](std::string_view) -> const Spec* { return &broken; }, {"broken"}});
    CHECK_THROWS_AS(load_string("items:\n  - name: a\n    type: broken\n", "x.yaml", root), std::logic_error);
}

TEST_CASE("checks declared on a block type run per block") {
    static const Spec webhook = [] {
        Spec s("webhook", "a webhook");
        s.string("path").def("/");
        s.check([](const Section& b, Reporter& r) {
            if (!b.string("path").starts_with("/")) r.error(b.position("path"), b.path() + ".path must start with '/'");
        });
        return s;
    }();
    Spec root("root", "");
    root.blocks("hooks", BlockTypes{[](std::string_view t) { return t == "webhook" ? &webhook : nullptr; }, {"webhook"}});
    LoadResult r = load_string("hooks:\n  - {name: a, type: webhook, path: x}\n  - {name: b, type: webhook}\n",
                               "hooks.yaml", root);
    CHECK(messages(r) == std::vector<std::string>{"hooks.yaml:2:36: hooks.a.path must start with '/'"});
}
