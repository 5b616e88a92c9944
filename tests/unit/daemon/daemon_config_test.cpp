// The `pipeline:` block of the daemon's schema: the documented defaults, every option read
// into PipelineSettings, and each rule reported with the position of what is wrong.
#include <catch2/catch.hpp>

#include "config/loader.h"
#include "connectors/registry.h"
#include "daemon/daemon_config.h"

using namespace omnibus;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

const connectors::Registry& registry() {
    static const connectors::Registry r = [] {
        connectors::Registry reg;
        connectors::register_builtin_connectors(reg);
        return reg;
    }();
    return r;
}

config::LoadResult load(const std::string& yaml) {
    static const config::Spec schema = daemon::daemon_schema(registry());
    return config::load_string(yaml, "test.yaml", schema);
}

constexpr const char* kWhatsAppChannel = R"(channels:
  - name: wa-brasil
    type: whatsapp
    app_secret: s
    verify_token: v
    access_token: t
    phone_number_id: "1"
)";

}  // namespace

TEST_CASE("an absent pipeline block gives the documented defaults") {
    auto r = load("kafka:\n  embedded: true\n");
    INFO(r.report());
    REQUIRE(r.ok());
    const auto s = daemon::to_daemon_config(*r.config).pipeline;
    const pipeline::PipelineSettings d;
    CHECK(s.enabled);
    CHECK(s.identity.auto_link == std::vector<std::string>{"phone", "email", "shop"});
    CHECK(s.identity.auto_link == d.identity.auto_link);
    CHECK_FALSE(s.identity.email_lowercase_local_part);
    CHECK_FALSE(s.identity.email_fold_gmail);
    CHECK(s.identity.default_region.empty());
    CHECK(s.identity.channel_regions.empty());
    CHECK(s.identity.rebuild_after == d.identity.rebuild_after);
    CHECK(s.history.conversation_idle == d.history.conversation_idle);
    CHECK(s.history.context_messages == d.history.context_messages);
    CHECK(s.history.context_bytes == d.history.context_bytes);
    CHECK(s.history.retention == d.history.retention);
    CHECK(s.transactions == pipeline::PipelineSettings::Transactions::automatic);
    CHECK(s.transaction_interval == 100ms);
    CHECK(s.transaction_interval == d.transaction_interval);
}

TEST_CASE("every pipeline option is read into PipelineSettings") {
    auto r = load(std::string(R"(kafka:
  embedded: true
pipeline:
  enabled: false
  transactions: "on"
  transaction_interval: 250ms
  identity:
    auto_link: [phone, webchat, whatsapp, shop_v2]
    email:
      lowercase_local_part: true
      fold_gmail: true
    default_region: DE
    phone_regions:
      wa-brasil: BR
    rebuild_after: 48h
  history:
    conversation_idle: 2h
    context_messages: 50
    context_bytes: 64KiB
    retention: 720h
)") + kWhatsAppChannel);
    INFO(r.report());
    REQUIRE(r.ok());
    const auto s = daemon::to_daemon_config(*r.config).pipeline;
    CHECK_FALSE(s.enabled);
    CHECK(s.transactions == pipeline::PipelineSettings::Transactions::on);
    CHECK(s.transaction_interval == 250ms);
    CHECK(s.identity.auto_link == std::vector<std::string>{"phone", "webchat", "whatsapp", "shop_v2"});
    CHECK(s.identity.email_lowercase_local_part);
    CHECK(s.identity.email_fold_gmail);
    CHECK(s.identity.default_region == "DE");
    CHECK(s.identity.channel_regions == std::map<std::string, std::string>{{"wa-brasil", "BR"}});
    CHECK(s.identity.rebuild_after == 48h);
    CHECK(s.history.conversation_idle == 2h);
    CHECK(s.history.context_messages == 50);
    CHECK(s.history.context_bytes == 64 * 1024);
    CHECK(s.history.retention == 720h);
}

TEST_CASE("identity kinds that are not kinds, and kinds listed twice, are reported at the list") {
    auto r = load("kafka:\n  embedded: true\npipeline:\n  identity:\n    auto_link: [phone, Email, \"we b\", phone]\n");
    REQUIRE_FALSE(r.ok());
    const std::string report = r.report();
    CHECK_THAT(report, Contains("test.yaml:5:16: pipeline.identity.auto_link: 'Email' is not an identity kind"));
    CHECK_THAT(report, Contains("'we b' is not an identity kind"));
    CHECK_THAT(report, Contains("test.yaml:5:16: pipeline.identity.auto_link: 'phone' is listed twice"));
}

TEST_CASE("regions libphonenumber does not know are reported with their position") {
    auto r = load(std::string("kafka:\n  embedded: true\npipeline:\n  identity:\n    default_region: XX\n"
                              "    phone_regions:\n      wa-brasil: brazil\n") +
                  kWhatsAppChannel);
    REQUIRE_FALSE(r.ok());
    const std::string report = r.report();
    CHECK_THAT(report, Contains("test.yaml:5:21: pipeline.identity.default_region: 'XX' is not a region"));
    CHECK_THAT(report, Contains("test.yaml:7:7: pipeline.identity.phone_regions.wa-brasil: 'brazil' is not a region"));
}

TEST_CASE("a phone region for a channel that does not exist is reported") {
    auto r = load("kafka:\n  embedded: true\npipeline:\n  identity:\n    phone_regions:\n      wa-typo: BR\n");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.report(), Contains("test.yaml:6:7: pipeline.identity.phone_regions: no channel is named 'wa-typo'"));
}

TEST_CASE("pipeline values out of range and unknown options are reported with their position") {
    auto r = load(R"(kafka:
  embedded: true
pipeline:
  transactions: always
  identity:
    rebuild_after: 30s
    emial: {}
  history:
    conversation_idle: 0s
    context_messages: -1
    context_bytes: 2MiB
    retention: 1m
)");
    REQUIRE_FALSE(r.ok());
    const std::string report = r.report();
    CHECK_THAT(report, Contains("test.yaml:4:17: pipeline.transactions:"));
    CHECK_THAT(report, Contains("test.yaml:6:20: pipeline.identity.rebuild_after: expected"));
    CHECK_THAT(report, Contains("test.yaml:7:5: unknown option 'pipeline.identity.emial'; did you mean 'email'?"));
    CHECK_THAT(report, Contains("test.yaml:9:24: pipeline.history.conversation_idle: expected"));
    CHECK_THAT(report, Contains("test.yaml:10:23: pipeline.history.context_messages: expected"));
    CHECK_THAT(report, Contains("test.yaml:11:20: pipeline.history.context_bytes: expected"));
    CHECK_THAT(report, Contains("test.yaml:12:16: pipeline.history.retention: expected"));
}

TEST_CASE("every channel block takes a `language`, an ISO 639-1 code") {
    auto ok = load(std::string("kafka:\n  embedded: true\n") + kWhatsAppChannel + "    language: pt\n");
    INFO(ok.report());
    REQUIRE(ok.ok());
    const auto cfg = daemon::to_daemon_config(*ok.config);
    REQUIRE(cfg.channels.size() == 1);
    CHECK(cfg.channels[0].string("language") == "pt");

    for (const char* bad : {"Portuguese", "PT", "p", "pt-BR"}) {
        INFO(bad);
        auto r = load(std::string("kafka:\n  embedded: true\n") + kWhatsAppChannel + "    language: " + bad + "\n");
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.report(), Contains("test.yaml:10:15: language: '" + std::string(bad) + "' is not an ISO 639-1 code"));
    }
}

TEST_CASE("admin.advertise is an http(s)://host:port URL, read as given, and left empty when unset") {
    auto unset = load("kafka:\n  embedded: true\n");
    REQUIRE(unset.ok());
    CHECK(daemon::to_daemon_config(*unset.config).admin_advertise.empty());
    auto given = load("kafka:\n  embedded: true\nadmin:\n  advertise: https://omnibus-2.internal:9443\n");
    INFO(given.report());
    REQUIRE(given.ok());
    CHECK(daemon::to_daemon_config(*given.config).admin_advertise == "https://omnibus-2.internal:9443");
    for (const char* bad : {"http://omnibus-2:9090/admin", "omnibus-2:9090", "http://omnibus-2", "ftp://h:21"}) {
        auto r = load(std::string("kafka:\n  embedded: true\nadmin:\n  advertise: \"") + bad + "\"\n");
        INFO(r.report());
        CHECK_FALSE(r.ok());
        CHECK_THAT(r.report(), Contains("test.yaml:4:") && Contains("admin.advertise"));
    }
}
