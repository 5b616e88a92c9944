// Loading a YAML file against a Spec: defaults, every option type, and every
// kind of error reported as FILE:LINE:COL, all of them at once.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "config/loader.h"
#include "example_schema.h"
#include "temp_dir.h"

using namespace omnibus;
using namespace omnibus::config;
using namespace omnibus::config::testing;
using Catch::Matchers::Contains;

TEST_CASE("absent options get their defaults and has() tells written from defaulted") {
    LoadResult r = load(kMinimal);
    INFO(r.report());
    REQUIRE(r.ok());
    CHECK(r.diagnostics.empty());
    const Section& c = *r.config;

    CHECK(c.string("instance") == "a");
    CHECK(c.has("instance"));
    CHECK(c.string("log_level") == "info");
    CHECK_FALSE(c.has("log_level"));

    const Section& kafka = c.section("kafka");
    CHECK(kafka.path() == "kafka");
    CHECK(kafka.boolean("embedded"));
    CHECK(kafka.integer("partitions") == 6);
    CHECK(kafka.duration("timeout") == std::chrono::seconds(5));
    CHECK(kafka.size("max_message") == 1024u * 1024u);
    CHECK(kafka.string("compression") == "lz4");
    CHECK(kafka.real("sample_ratio") == 0.5);
    CHECK(kafka.secret_map("client").empty());
    CHECK_FALSE(kafka.has("brokers"));

    // admin is absent altogether: still a section, with its defaults.
    CHECK_FALSE(c.has("admin"));
    const Section& admin = c.section("admin");
    CHECK(admin.address("listen") == Address{"127.0.0.1", 9090});
    CHECK(admin.strings("allowed_origins").empty());
    CHECK(c.blocks("channels").empty());
}

TEST_CASE("every option type is read from the file") {
    const char* yaml = R"(instance: edge-1
log_level: debug
kafka:
  brokers: k1:9092,k2:9092
  partitions: 12
  timeout: 250ms
  max_message: 64KiB
  compression: zstd
  sample_ratio: 0.25
  password: hunter2
  client:
    sasl.username: bot
    sasl.password: s3cret
    enable.idempotence: true
admin:
  listen: "[::1]:9091"
  allowed_origins: [https://a.example, https://b.example]
  token: t0k
)";
    LoadResult r = load(yaml);
    INFO(r.report());
    REQUIRE(r.ok());
    const Section& c = *r.config;
    CHECK(c.string("log_level") == "debug");
    const Section& kafka = c.section("kafka");
    CHECK(kafka.string("brokers") == "k1:9092,k2:9092");
    CHECK(kafka.integer("partitions") == 12);
    CHECK(kafka.duration("timeout") == std::chrono::milliseconds(250));
    CHECK(kafka.size("max_message") == 65536u);
    CHECK(kafka.string("compression") == "zstd");
    CHECK(kafka.real("sample_ratio") == 0.25);
    CHECK(kafka.secret("password").reveal() == "hunter2");
    const SecretMap& client = kafka.secret_map("client");
    REQUIRE(client.size() == 3);
    CHECK(client.at("sasl.password").reveal() == "s3cret");
    CHECK(client.at("enable.idempotence").reveal() == "true");
    const Section& admin = c.section("admin");
    CHECK(admin.address("listen") == Address{"::1", 9091});
    CHECK(admin.strings("allowed_origins") == std::vector<std::string>{"https://a.example", "https://b.example"});
    CHECK(admin.secret("token").reveal() == "t0k");
    CHECK(c.has("admin"));
    CHECK(admin.has("listen"));

    // Positions point at the value, 1-based.
    CHECK(kafka.position("partitions") == Position{5, 15});
    CHECK(kafka.position() == Position{3, 1});
    // An option that was not written points at its section.
    CHECK(kafka.position("embedded") == Position{3, 1});
}

TEST_CASE("all errors of a file are reported at once, in file order, with line and column") {
    const char* yaml = R"(instance: a
log_level: verbose
kafka:
  brokres: k1:9092
  partitions: six
  timeout: 5
  max_message: 2GiB
  compression: gzp
  sample_ratio: 1.5
admin:
  listen: localhost
  allowed_origins: https://a
extra: 1
)";
    LoadResult r = load(yaml);
    CHECK_FALSE(r.ok());
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:2:12: log_level: expected one of 'debug', 'info', 'warn', 'error', got 'verbose'",
        "omnibus.yaml:4:3: unknown option 'kafka.brokres'; did you mean 'brokers'?",
        "omnibus.yaml:5:15: kafka.partitions: expected an integer, got 'six'",
        "omnibus.yaml:6:12: kafka.timeout: expected a duration with a unit (ms, s, m, h) such as '250ms', '30s' "
        "or '1h30m', got '5'",
        "omnibus.yaml:7:16: kafka.max_message: expected 1 to 1GiB, got '2GiB'",
        "omnibus.yaml:8:16: kafka.compression: expected one of 'none', 'gzip', 'lz4', 'zstd', got 'gzp'; "
        "did you mean 'gzip'?",
        "omnibus.yaml:9:17: kafka.sample_ratio: expected 0 to 1, got '1.5'",
        "omnibus.yaml:11:11: admin.listen: expected an address such as '127.0.0.1:9090', '[::1]:9090' or ':8080', "
        "got 'localhost'",
        "omnibus.yaml:12:20: admin.allowed_origins: expected a list of strings, got 'https://a'",
        "omnibus.yaml:13:1: unknown option 'extra'",
    });
    // The cross-field check on kafka does not run on a section with errors.
    CHECK_THAT(r.report(), !Contains("required unless"));
}

TEST_CASE("integer range errors name the bounds") {
    LoadResult r = load("instance: a\nkafka:\n  embedded: true\n  partitions: 0\n");
    CHECK(messages(r) == std::vector<std::string>{"omnibus.yaml:4:15: kafka.partitions: expected 1 to 10000, got '0'"});
    r = load("instance: a\nkafka:\n  embedded: true\n  timeout: 2m\n");
    CHECK(messages(r) == std::vector<std::string>{"omnibus.yaml:4:12: kafka.timeout: expected 100ms to 1m, got '2m'"});
    r = load("instance: a\nkafka:\n  embedded: true\n  partitions: 10000\n  timeout: 100ms\n");
    CHECK(r.ok());
}

TEST_CASE("a missing required option is reported at the mapping that should hold it") {
    const char* yaml = R"(kafka:
  embedded: true
channels:
  - name: wa
    type: whatsapp
    window: 1h
)";
    LoadResult r = load(yaml);
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:1:1: missing required option 'instance'",
        "omnibus.yaml:4:5: missing required option 'channels.wa.app_secret'",
        "omnibus.yaml:4:5: missing required option 'channels.wa.phone_number_id'",
    });
}

TEST_CASE("cross-field checks run on the resolved section and report where the user should look") {
    LoadResult r = load("instance: a\nkafka:\n  partitions: 3\n");
    CHECK(messages(r) ==
          std::vector<std::string>{"omnibus.yaml:2:1: kafka.brokers is required unless kafka.embedded is true"});

    // Without any kafka section the check still runs, at the top of the file.
    r = load("instance: a\n");
    CHECK(messages(r) ==
          std::vector<std::string>{"omnibus.yaml:1:1: kafka.brokers is required unless kafka.embedded is true"});

    r = load("instance: a\nkafka:\n  brokers: k1:9092\n");
    CHECK(r.ok());
}

TEST_CASE("an empty document is all defaults, or the required-option errors") {
    Spec relaxed("relaxed", "nothing required");
    relaxed.integer("workers").def(2);
    relaxed.string("name");
    for (const char* text : {"", "# only a comment\n", "---\n"}) {
        INFO(text);
        LoadResult r = load_string(text, "empty.yaml", relaxed);
        REQUIRE(r.ok());
        CHECK(r.config->integer("workers") == 2);
        CHECK_FALSE(r.config->has("name"));
        CHECK_THROWS_AS(r.config->string("name"), std::logic_error);
    }

    LoadResult r = load("");
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:1:1: missing required option 'instance'",
        "omnibus.yaml:1:1: kafka.brokers is required unless kafka.embedded is true",
    });
}

TEST_CASE("a YAML syntax error is one diagnostic at its position") {
    LoadResult r = load("instance: a\nkafka: b: c\n");
    CHECK(messages(r) == std::vector<std::string>{"omnibus.yaml:2:9: invalid YAML: illegal map value"});

    r = load("instance: a\nkafka: [1, 2\n");
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].position.line == 3);
    CHECK_THAT(r.diagnostics[0].message, Contains("invalid YAML: end of sequence flow not found"));
}

TEST_CASE("a stray flow indicator is a syntax error, not an endless stream of empty documents") {
    // yaml-cpp 0.7 loops forever in LoadAll on these (found by the fuzzer).
    CHECK(messages(load(",)~")) == std::vector<std::string>{"omnibus.yaml:1:1: invalid YAML: unexpected ','"});
    CHECK(messages(load("- a\n,\n")) == std::vector<std::string>{"omnibus.yaml:2:1: invalid YAML: unexpected ','"});
}

TEST_CASE("duplicate keys are errors, not silently last-wins") {
    const char* yaml = R"(instance: a
kafka:
  embedded: true
  partitions: 3
  partitions: 4
  client:
    acks: all
    acks: "1"
instance: b
)";
    LoadResult r = load(yaml);
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:5:3: duplicate key 'kafka.partitions'; first set at 4:3",
        "omnibus.yaml:8:5: duplicate key 'kafka.client.acks'; first set at 7:5",
        "omnibus.yaml:9:1: duplicate key 'instance'; first set at 1:1",
    });
}

TEST_CASE("a value of the wrong shape names what was expected and what was found") {
    LoadResult r = load("instance: a\nkafka: true\n");
    CHECK(messages(r) == std::vector<std::string>{"omnibus.yaml:2:8: kafka: expected a mapping, got 'true'"});

    r = load("- a\n- b\n");
    CHECK(messages(r) ==
          std::vector<std::string>{"omnibus.yaml:1:1: expected a mapping of options at the top level, got a list"});

    r = load("just text\n");
    CHECK(messages(r) ==
          std::vector<std::string>{"omnibus.yaml:1:1: expected a mapping of options at the top level, got 'just text'"});

    r = load("instance:\n  - a\nkafka:\n  embedded: yes\n  client: [a]\nadmin:\n  allowed_origins: [a, {b: 1}]\n");
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:2:3: instance: expected a string, got a list",
        "omnibus.yaml:4:13: kafka.embedded: expected true or false, got 'yes'",
        "omnibus.yaml:5:11: kafka.client: expected a mapping of names to values, got a list",
        "omnibus.yaml:7:24: admin.allowed_origins[1]: expected a string, got a mapping",
    });

    // An empty value is "nothing", reported at its key.
    r = load("instance:\nkafka:\n  embedded: true\n");
    CHECK(messages(r) == std::vector<std::string>{"omnibus.yaml:1:1: instance: expected a string, got nothing"});

    // A key that is not a plain name.
    r = load("instance: a\nkafka:\n  embedded: true\n  [x]: 1\n");
    CHECK(messages(r) ==
          std::vector<std::string>{"omnibus.yaml:4:3: kafka: a key must be a plain name, got a list"});
}

TEST_CASE("a section written empty is present, with its defaults") {
    LoadResult r = load("instance: a\nkafka:\n  embedded: true\nadmin:\n");
    INFO(r.report());
    REQUIRE(r.ok());
    CHECK(r.config->has("admin"));
    CHECK(r.config->section("admin").address("listen").port == 9090);
}

TEST_CASE("unknown keys suggest the closest declared name, if any is close") {
    LoadResult r = load("instance: a\nkafak:\n  embedded: true\nlog_levle: info\nzzzzzz: 1\n");
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:1:1: kafka.brokers is required unless kafka.embedded is true",
        "omnibus.yaml:2:1: unknown option 'kafak'; did you mean 'kafka'?",
        "omnibus.yaml:4:1: unknown option 'log_levle'; did you mean 'log_level'?",
        "omnibus.yaml:5:1: unknown option 'zzzzzz'",
    });
}

TEST_CASE("more than one YAML document is refused") {
    LoadResult r = load("instance: a\nkafka: {embedded: true}\n---\ninstance: b\n");
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:3:1: only one YAML document is allowed; remove the second '---' and what follows"});
}

TEST_CASE("aliases are followed, and a key repeated through them is still one key") {
    const char* yaml = R"(instance: a
defaults: &k
  embedded: true
kafka: *k
)";
    LoadResult r = load(yaml);
    CHECK(messages(r) == std::vector<std::string>{"omnibus.yaml:2:1: unknown option 'defaults'"});

    // A mapping that contains itself must not send the loader round in circles.
    r = load("instance: a\nkafka: &k\n  embedded: true\n  client: *k\n");
    CHECK_FALSE(r.ok());
}

TEST_CASE("control characters from the file never break a diagnostic's line") {
    LoadResult r = load("instance: a\n\"bad\\nkey\\u0001\": 1\nkafka: {embedded: true}\n");
    REQUIRE(r.diagnostics.size() == 1);
    CHECK(r.diagnostics[0].to_string() == "omnibus.yaml:2:1: unknown option 'bad\\nkey\\x01'");
}

TEST_CASE("load_file reads the file and names it in every diagnostic") {
    TempDir dir;
    const std::string path = dir.write("omnibus.yaml", "instance: a\nkafka:\n  partitions: 0\n  embedded: true\n");
    LoadResult r = load_file(path, schema(), with_env());
    CHECK(messages(r) == std::vector<std::string>{path + ":3:15: kafka.partitions: expected 1 to 10000, got '0'"});
    CHECK(r.report() == path + ":3:15: kafka.partitions: expected 1 to 10000, got '0'\n");

    dir.write("omnibus.yaml", kMinimal);
    CHECK(load_file(path, schema(), with_env()).ok());

    r = load_file(dir.file("missing.yaml"), schema());
    CHECK(messages(r) == std::vector<std::string>{dir.file("missing.yaml") + ": cannot read: No such file or directory"});

    r = load_file(dir.path(), schema());
    CHECK(messages(r) == std::vector<std::string>{dir.path() + ": cannot read: Is a directory"});
}

TEST_CASE("getters refuse undeclared names, wrong types and values that do not exist") {
    LoadResult r = load(kMinimal);
    REQUIRE(r.ok());
    const Section& kafka = r.config->section("kafka");
    CHECK_THROWS_WITH(kafka.integer("partition"), "config: 'kafka' has no option 'partition'");
    CHECK_THROWS_WITH(kafka.string("partitions"), "config option 'kafka.partitions' is of type integer, not string");
    CHECK_THROWS_AS(kafka.has("nope"), std::logic_error);
    CHECK_THROWS_WITH(kafka.string("brokers"),
                      "config option 'kafka.brokers' was not set and has no default; check has() first");
    CHECK_THROWS_AS(r.config->section("instance"), std::logic_error);
    CHECK_THROWS_AS(r.config->blocks("kafka"), std::logic_error);

    // Sections share their data: a copy is cheap and sees the same values.
    Section copy = kafka;
    CHECK(copy.integer("partitions") == 6);
}
