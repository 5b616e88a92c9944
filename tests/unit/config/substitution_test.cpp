// ${env:NAME} and ${file:/path} substitution, and the rule that a substituted
// value (possibly a secret) never appears in a diagnostic.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cerrno>

#include "config/loader.h"
#include "config/substitution.h"
#include "example_schema.h"
#include "temp_dir.h"

using namespace omnibus;
using namespace omnibus::config;
using namespace omnibus::config::testing;
using Catch::Matchers::Contains;

namespace {

Expansion expand_with(std::string_view raw, std::map<std::string, std::string> vars = {}) {
    LoadOptions o = with_env(std::move(vars));
    return expand(raw, o.getenv, o.read_file);
}

const char* const kSecret = "hunter2-do-not-print";

}  // namespace

TEST_CASE("references are replaced where they stand and $${ is a literal ${") {
    Expansion e = expand_with("Bearer ${env:T}", {{"T", "abc"}});
    CHECK(e.ok());
    CHECK(e.text == "Bearer abc");
    CHECK(e.substituted);

    e = expand_with("${env:A}:${env:B}", {{"A", "h"}, {"B", "1"}});
    CHECK(e.text == "h:1");

    e = expand_with("plain $ and $$ text");
    CHECK(e.text == "plain $ and $$ text");
    CHECK_FALSE(e.substituted);

    e = expand_with("$${env:T} costs ${env:T}", {{"T", "5"}});
    CHECK(e.text == "${env:T} costs 5");

    // Substituted text is not expanded again.
    e = expand_with("${env:T}", {{"T", "${env:U}"}, {"U", "no"}});
    CHECK(e.text == "${env:U}");

    e = expand_with("${env:EMPTY}", {{"EMPTY", ""}});
    CHECK(e.ok());
    CHECK(e.text.empty());
}

TEST_CASE("bad references are errors that name the reference") {
    CHECK(expand_with("${env:NOPE}").error == "environment variable 'NOPE' is not set");
    CHECK(expand_with("x ${foo} y").error ==
          "unknown substitution ${foo}; use ${env:NAME} or ${file:/path} (write $${ for a literal ${)");
    CHECK(expand_with("${env:T").error == "'${' without a closing '}' (write $${ for a literal ${)");
    CHECK(expand_with("${env:}").error == "invalid environment variable name in ${env:}");
    CHECK(expand_with("${env:1X}").error == "invalid environment variable name in ${env:1X}");
    CHECK(expand_with("${file:relative/token}").error == "${file:relative/token} needs an absolute path");
}

TEST_CASE("${file:} reads the file and strips one trailing newline") {
    TempDir dir;
    CHECK(expand_with("${file:" + dir.write("token", "s3cret\n") + "}").text == "s3cret");
    CHECK(expand_with("${file:" + dir.write("crlf", "s3cret\r\n") + "}").text == "s3cret");
    CHECK(expand_with("${file:" + dir.write("two", "line\n\n") + "}").text == "line\n");
    CHECK(expand_with("${file:" + dir.write("none", "raw") + "}").text == "raw");

    const std::string missing = dir.file("missing");
    CHECK(expand_with("${file:" + missing + "}").error ==
          "cannot read '" + missing + "': No such file or directory");
    CHECK(expand_with("${file:" + dir.path() + "}").error == "cannot read '" + dir.path() + "': Is a directory");
}

TEST_CASE("read_text_file refuses what is too large and does not wait on a FIFO") {
    TempDir dir;
    const std::string big = dir.write("big", std::string(100, 'x'));
    CHECK(read_text_file(big, 99).error == EFBIG);
    CHECK(read_text_file(big, 100).text == std::string(100, 'x'));

    const std::string fifo = dir.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    FileContent c = read_text_file(fifo, 1024);
    REQUIRE(c.text);
    CHECK(c.text->empty());
}

TEST_CASE("substitutions feed every option type through the loader") {
    TempDir dir;
    const std::string secret_file = dir.write("wa_secret", std::string(kSecret) + "\n");
    const std::string yaml = "instance: ${env:INSTANCE}\n"
                             "kafka:\n"
                             "  brokers: ${env:BROKERS}\n"
                             "  partitions: ${env:PARTITIONS}\n"
                             "  password: ${file:" + secret_file + "}\n"
                             "  client:\n"
                             "    sasl.password: ${env:SASL}\n"
                             "admin:\n"
                             "  token: \"Bearer ${env:TOKEN}\"\n"
                             "  allowed_origins: [\"${env:ORIGIN}\", \"$${literal}\"]\n";
    LoadResult r = load(yaml, with_env({{"INSTANCE", "edge-7"},
                                        {"BROKERS", "k1:9092"},
                                        {"PARTITIONS", "24"},
                                        {"SASL", "pw"},
                                        {"TOKEN", "t0k"},
                                        {"ORIGIN", "https://shop.example"}}));
    INFO(r.report());
    REQUIRE(r.ok());
    const Section& c = *r.config;
    CHECK(c.string("instance") == "edge-7");
    CHECK(c.section("kafka").string("brokers") == "k1:9092");
    CHECK(c.section("kafka").integer("partitions") == 24);
    CHECK(c.section("kafka").secret("password").reveal() == kSecret);
    CHECK(c.section("kafka").secret_map("client").at("sasl.password").reveal() == "pw");
    CHECK(c.section("admin").secret("token").reveal() == "Bearer t0k");
    CHECK(c.section("admin").strings("allowed_origins") ==
          std::vector<std::string>{"https://shop.example", "${literal}"});
}

TEST_CASE("substitution errors are reported at the value, naming the variable or path") {
    const char* yaml = "instance: ${env:INSTANCE}\n"
                       "kafka:\n"
                       "  embedded: true\n"
                       "  password: ${file:/nonexistent/omnibus/secret}\n"
                       "  client:\n"
                       "    sasl.password: ${nope}\n";
    LoadResult r = load(yaml);
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:1:11: instance: environment variable 'INSTANCE' is not set",
        "omnibus.yaml:4:13: kafka.password: cannot read '/nonexistent/omnibus/secret': No such file or directory",
        "omnibus.yaml:6:20: kafka.client.sasl.password: unknown substitution ${nope}; use ${env:NAME} or "
        "${file:/path} (write $${ for a literal ${)",
    });
}

TEST_CASE("a substituted secret put where it does not belong is never echoed") {
    TempDir dir;
    const std::string secret_file = dir.write("s", kSecret);
    const std::string yaml = "instance: a\n"
                             "log_level: ${env:S}\n"
                             "kafka:\n"
                             "  embedded: true\n"
                             "  partitions: ${env:S}\n"
                             "  timeout: \"x${env:S}\"\n"
                             "  compression: ${env:NEAR}\n"
                             "admin:\n"
                             "  listen: ${file:" + secret_file + "}\n"
                             "channels:\n"
                             "  - name: ${env:S}\n"
                             "    type: ${env:S}\n";
    LoadResult r = load(yaml, with_env({{"S", kSecret}, {"NEAR", "gzp"}}));
    CHECK(messages(r) == std::vector<std::string>{
        "omnibus.yaml:2:12: log_level: expected one of 'debug', 'info', 'warn', 'error', got value from ${env:S}",
        "omnibus.yaml:5:15: kafka.partitions: expected an integer, got value from ${env:S}",
        "omnibus.yaml:6:12: kafka.timeout: expected a duration with a unit (ms, s, m, h) such as '250ms', '30s' or "
        "'1h30m', got value from 'x${env:S}'",
        // No "did you mean 'gzip'?": it would tell the reader what the secret nearly is.
        "omnibus.yaml:7:16: kafka.compression: expected one of 'none', 'gzip', 'lz4', 'zstd', got value from ${env:NEAR}",
        "omnibus.yaml:9:11: admin.listen: expected an address such as '127.0.0.1:9090', '[::1]:9090' or ':8080', got "
        "value from ${file:" + secret_file + "}",
        // Names and types become paths, URLs and log fields: they are never substituted.
        "omnibus.yaml:11:11: channels[0].name: write it literally; names appear in URLs and logs, so "
        "substitutions are not allowed here",
        "omnibus.yaml:12:11: channels[0].type: write it literally; substitutions are not allowed here",
    });
    CHECK_THAT(r.report(), !Contains("hunter2"));
    CHECK_THAT(r.report(), !Contains("gzp"));
}

TEST_CASE("secret map values are never shown, even when written in the file") {
    LoadResult r = load("instance: a\nkafka:\n  embedded: true\n  client:\n    sasl.password: {nested: hunter2}\n");
    CHECK(messages(r) ==
          std::vector<std::string>{"omnibus.yaml:5:20: kafka.client.sasl.password: expected a value, got a mapping"});
    CHECK_THAT(r.report(), !Contains("hunter2"));
}
