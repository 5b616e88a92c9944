// The markdown reference generated from the specs: every option appears with
// its type, default, required flag and description; output is deterministic.
#include <catch2/catch.hpp>

#include "config/reference.h"
#include "example_schema.h"

using namespace omnibus::config;
using namespace omnibus::config::testing;
using Catch::Matchers::Contains;

namespace {

void check_every_option_listed(const Spec& spec, const std::string& doc) {
    for (const Option& o : spec.options()) {
        INFO(spec.name() << "." << o.name());
        CHECK_THAT(doc, Contains("| `" + o.name() + "` | " + std::string(type_name(o.type())) + " |"));
        if (o.section_spec() != nullptr) check_every_option_listed(*o.section_spec(), doc);
    }
}

}  // namespace

TEST_CASE("the reference lists every option of every section and block type") {
    const std::string doc = render_reference(schema());
    check_every_option_listed(schema(), doc);
    check_every_option_listed(whatsapp_spec(), doc);
    check_every_option_listed(email_spec(), doc);

    CHECK(doc.starts_with("# Configuration reference\n"));
    CHECK_THAT(doc, Contains("## Top level\n\nomnibus daemon.\n"));
    CHECK_THAT(doc, Contains("## `kafka`\n\nKafka connection.\n"));
    CHECK_THAT(doc, Contains("## `admin`\n"));
    CHECK_THAT(doc, Contains("## `channels` of type `email`\n\nIMAP in, SMTP out.\n"));
    CHECK_THAT(doc, Contains("## `channels` of type `whatsapp`\n"));
    CHECK_THAT(doc, Contains("| Option | Type | Default | Required | Description |\n| --- | --- | --- | --- | --- |\n"));
}

TEST_CASE("rows carry default, required, range, allowed values and example") {
    const std::string doc = render_reference(schema());
    CHECK_THAT(doc, Contains("| `instance` | string |  | yes | this instance's name. |"));
    CHECK_THAT(doc, Contains("| `partitions` | integer | `6` | no | partitions of each topic. Range: `1` to `10000`. |"));
    CHECK_THAT(doc, Contains("| `timeout` | duration | `5s` | no | request timeout. Range: `100ms` to `1m`. |"));
    CHECK_THAT(doc, Contains("| `max_message` | size | `1MiB` | no | largest message produced. Range: `1` to `1GiB`. |"));
    CHECK_THAT(doc, Contains("| `compression` | enum | `lz4` | no | producer compression. One of: `none`, `gzip`, "
                             "`lz4`, `zstd`. |"));
    CHECK_THAT(doc, Contains("| `brokers` | string |  | no | comma-separated bootstrap list. Example: "
                             "`k1:9092,k2:9092`. |"));
    CHECK_THAT(doc, Contains("| `listen` | address | `127.0.0.1:9090` | no |"));
    CHECK_THAT(doc, Contains("| `folders` | list of strings | `[INBOX]` | no |"));
    CHECK_THAT(doc, Contains("| `client` | map of secrets |  | no | librdkafka properties passed through. |"));
    CHECK_THAT(doc, Contains("| `kafka` | section |  | no | Kafka connection. See [`kafka`](#kafka). |"));
    CHECK_THAT(doc, Contains("| `channels` | list of blocks |  | no | channel instances. Each block has a `name` and a "
                             "`type`: [`email`](#channels-of-type-email), [`whatsapp`](#channels-of-type-whatsapp). |"));
    CHECK_THAT(doc, Contains("## Value formats"));
}

TEST_CASE("the reference is deterministic and escapes table syntax") {
    CHECK(render_reference(schema()) == render_reference(schema()));

    Spec s("s", "");
    s.string("pipe").describe("a | b\nc");
    const std::string doc = render_reference(s, "T");
    CHECK(doc.starts_with("# T\n"));
    CHECK_THAT(doc, Contains("| `pipe` | string |  | no | a \\| b c. |"));
}
