// The `type: whatsapp` channel block: required secrets, defaults, checks with
// positions, and a reference that documents every option.
#include <catch2/catch.hpp>

#include <map>

#include "config/loader.h"
#include "config/reference.h"
#include "connectors/whatsapp/whatsapp_spec.h"

using namespace omnibus;
using namespace omnibus::config;
using namespace std::chrono_literals;

namespace {

const Spec& whatsapp() {
    static const Spec s = connectors::whatsapp::whatsapp_spec();
    return s;
}

const Spec& root() {
    static const Spec r = [] {
        Spec s("omnibus", "test root");
        s.blocks("channels",
                 BlockTypes{[](std::string_view t) -> const Spec* { return t == "whatsapp" ? &whatsapp() : nullptr; },
                            {"whatsapp"}});
        return s;
    }();
    return r;
}

LoadResult load(const std::string& block) {
    LoadOptions o;
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
        static const std::map<std::string, std::string> env = {
            {"WA_SECRET", "app-secret"}, {"WA_VERIFY", "verify-me"}, {"WA_TOKEN", "EAAG-token"}};
        auto it = env.find(name);
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    return load_string("channels:\n  - name: wa-eu\n    type: whatsapp\n" + block, "omnibus.yaml", root(), o);
}

const std::string kRequired =
    "    app_secret: ${env:WA_SECRET}\n"
    "    verify_token: ${env:WA_VERIFY}\n"
    "    access_token: ${env:WA_TOKEN}\n"
    "    phone_number_id: \"106540352242922\"\n";

}  // namespace

TEST_CASE("a minimal whatsapp block: the three secrets, the number id, and defaults for the rest") {
    const LoadResult r = load(kRequired);
    INFO(r.report());
    REQUIRE(r.ok());
    const Section& wa = r.config->blocks("channels").at(0);
    CHECK(wa.secret("app_secret").reveal() == "app-secret");
    CHECK(wa.secret("verify_token").reveal() == "verify-me");
    CHECK(wa.secret("access_token").reveal() == "EAAG-token");
    CHECK(wa.string("phone_number_id") == "106540352242922");
    CHECK(wa.string("graph_api_url") == "https://graph.facebook.com");
    CHECK(wa.string("graph_api_version") == "v23.0");
    CHECK_FALSE(wa.has("default_region"));
    CHECK_FALSE(wa.section("closed_window_template").has("name"));
    CHECK(wa.integer("rate_limit") == 80);
    CHECK(wa.integer("max_retries") == 5);
    CHECK(wa.duration("retry_backoff") == 1s);
    CHECK(wa.duration("retry_backoff_max") == 1min);
    CHECK(wa.duration("request_timeout") == 10s);
    CHECK(wa.duration("dedup_window") == 168h);
    CHECK(wa.size("max_webhook_body") == 3u << 20);
}

TEST_CASE("every option set") {
    const LoadResult r = load(kRequired +
                              "    graph_api_url: http://127.0.0.1:18080\n"
                              "    graph_api_version: v21.0\n"
                              "    default_region: BR\n"
                              "    closed_window_template: {name: follow_up_v2, language: pt_BR}\n"
                              "    rate_limit: 250\n"
                              "    max_retries: 0\n"
                              "    retry_backoff: 200ms\n"
                              "    retry_backoff_max: 30s\n"
                              "    request_timeout: 3s\n"
                              "    dedup_window: 48h\n"
                              "    max_webhook_body: 1MiB\n");
    INFO(r.report());
    REQUIRE(r.ok());
    const Section& wa = r.config->blocks("channels").at(0);
    CHECK(wa.string("default_region") == "BR");
    CHECK(wa.section("closed_window_template").string("name") == "follow_up_v2");
    CHECK(wa.section("closed_window_template").string("language") == "pt_BR");
    CHECK(wa.integer("rate_limit") == 250);
    CHECK(wa.duration("dedup_window") == 48h);
}

TEST_CASE("missing secrets and bad values are reported with their position") {
    const LoadResult missing = load("    phone_number_id: \"1\"\n");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.report().find("app_secret") != std::string::npos);
    CHECK(missing.report().find("verify_token") != std::string::npos);
    CHECK(missing.report().find("access_token") != std::string::npos);

    const LoadResult bad = load(
        "    app_secret: s\n    verify_token: v\n    access_token: t\n"
        "    phone_number_id: \"+1 650 555 3333\"\n"
        "    graph_api_url: graph.facebook.com\n"
        "    graph_api_version: \"21\"\n"
        "    default_region: XX\n"
        "    closed_window_template: {name: follow_up_v2}\n"
        "    retry_backoff: 2m\n"
        "    retry_backoff_max: 1m\n");
    REQUIRE_FALSE(bad.ok());
    const std::string report = bad.report();
    INFO(report);
    CHECK(report.find("omnibus.yaml:7:22: phone_number_id must be the numeric ID") != std::string::npos);
    CHECK(report.find("omnibus.yaml:8:20: graph_api_url must start with https://") != std::string::npos);
    CHECK(report.find("omnibus.yaml:9:24: graph_api_version must look like v23.0") != std::string::npos);
    CHECK(report.find("omnibus.yaml:10:21: default_region must be an ISO 3166-1 region code") != std::string::npos);
    CHECK(report.find("omnibus.yaml:11:36: closed_window_template needs both name and language") != std::string::npos);
    CHECK(report.find("omnibus.yaml:12:20: retry_backoff must not exceed retry_backoff_max") != std::string::npos);

    const LoadResult range = load(kRequired + "    rate_limit: 5000\n    dedup_window: 30s\n");
    REQUIRE_FALSE(range.ok());
    CHECK(range.report().find("rate_limit: expected 1 to 1000, got '5000'") != std::string::npos);
    CHECK(range.report().find("dedup_window") != std::string::npos);
}

TEST_CASE("the reference documents every option") {
    const std::string ref = render_reference(root());
    for (const Option& o : whatsapp().options()) {
        INFO(o.name());
        CHECK(ref.find(o.name()) != std::string::npos);
        CHECK_FALSE(o.description().empty());
    }
    CHECK(ref.find("X-Hub-Signature-256") != std::string::npos);
}
