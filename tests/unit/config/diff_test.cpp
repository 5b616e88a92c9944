// Comparing two loads for a SIGHUP reload: the dotted paths of what changed.
#include <catch2/catch.hpp>

#include "config/loader.h"
#include "example_schema.h"

using namespace omnibus::config;
using namespace omnibus::config::testing;

namespace {

Section must_load(const std::string& yaml, std::map<std::string, std::string> env = {}) {
    LoadResult r = load(yaml, with_env(std::move(env)));
    INFO(r.report());
    REQUIRE(r.ok());
    return *r.config;
}

const char* const kBefore = R"(instance: a
kafka:
  brokers: k1:9092
channels:
  - {name: wa, type: whatsapp, app_secret: "${env:S}", phone_number_id: "1"}
  - {name: mail, type: email, imap: "h:1"}
)";

}  // namespace

TEST_CASE("identical loads have no differences, however they are written") {
    Section a = must_load(kBefore, {{"S", "one"}});
    Section b = must_load(kBefore, {{"S", "one"}});
    CHECK(diff(a, b).empty());

    // Writing a default explicitly changes nothing that matters.
    Section c = must_load(std::string(kBefore) + "log_level: info\n", {{"S", "one"}});
    CHECK(diff(a, c).empty());
}

TEST_CASE("changed options, changed secrets and added or removed blocks are listed by path") {
    Section before = must_load(kBefore, {{"S", "one"}});
    Section after = must_load(R"(instance: a
kafka:
  brokers: k2:9092
  timeout: 10s
admin:
  allowed_origins: [x]
channels:
  - {name: wa, type: whatsapp, app_secret: "${env:S}", phone_number_id: "1"}
  - {name: web, type: whatsapp, app_secret: x, phone_number_id: "2"}
)", {{"S", "two"}});
    CHECK(diff(before, after) == std::vector<std::string>{
        "kafka.brokers",
        "kafka.timeout",
        "admin.allowed_origins",
        "channels.wa.app_secret",
        "channels.mail",
        "channels.web",
    });
}

TEST_CASE("a block that changes type is listed as a whole") {
    Section before = must_load("instance: a\nkafka: {embedded: true}\nchannels:\n"
                               "  - {name: c, type: email, imap: \"h:1\"}\n");
    Section after = must_load("instance: a\nkafka: {embedded: true}\nchannels:\n"
                              "  - {name: c, type: whatsapp, app_secret: x, phone_number_id: \"1\"}\n");
    CHECK(diff(before, after) == std::vector<std::string>{"channels.c"});
}
