// omnibusd --check-config: every problem at once as FILE:LINE:COL: message and
// exit 1, or a one-line summary and exit 0; secrets never echoed.
#include <catch2/catch.hpp>

#include "daemon_fixture.h"

using namespace omnibus::test;
using namespace std::chrono_literals;

namespace {
struct Checked {
    int code;
    std::string output;
};
Checked check(const std::string& path, std::vector<std::string> env = {}) {
    Process p({omnibusd_path(), "--check-config", path}, std::move(env));
    REQUIRE(p.wait_exit(10s));
    return {p.exit_code(), p.output()};
}
}  // namespace

TEST_CASE("the shipped configs are valid") {
    auto quick = check(std::string(OMNIBUS_SOURCE_DIR) + "/config/quickstart.yaml");
    CHECK(quick.code == 0);
    CHECK(quick.output.find("quickstart.yaml: ok: kafka embedded, edge 0.0.0.0:8080, admin 127.0.0.1:9090") != std::string::npos);
    auto prod = check(std::string(OMNIBUS_SOURCE_DIR) + "/config/omnibus.yaml", {"OMNIBUS_KAFKA_PASSWORD=x"});
    CHECK(prod.code == 0);
    CHECK(std::count(prod.output.begin(), prod.output.end(), '\n') == 1);
}

TEST_CASE("every problem of a file is reported at once with its position") {
    TempFile f(R"(log:
  levle: info
admin:
  listen: 0.0.0.0:9090
kafka:
  partitions: abc
  replication_factor: 0
  message_timeout: 5 parsecs
)");
    auto r = check(f.path());
    CHECK(r.code == 1);
    const auto& p = f.path();
    CHECK(r.output.find(p + ":2:3: unknown option 'log.levle'; did you mean 'level'?") != std::string::npos);
    CHECK(r.output.find(p + ":6:15: kafka.partitions: expected an integer") != std::string::npos);
    CHECK(r.output.find(p + ":7:23: kafka.replication_factor: expected 1 to 100") != std::string::npos);
    CHECK(r.output.find(p + ":8:20: kafka.message_timeout:") != std::string::npos);
}

TEST_CASE("cross-field rules: brokers without embedded, token off loopback, reserved client properties") {
    TempFile f(R"(admin:
  listen: 0.0.0.0:9090
kafka:
  client:
    enable.idempotence: "false"
    no.such.property: 1
)");
    auto r = check(f.path());
    CHECK(r.code == 1);
    CHECK(r.output.find("kafka.brokers is required unless kafka.embedded is true") != std::string::npos);
    CHECK(r.output.find(f.path() + ":2:11: admin.listen 0.0.0.0:9090 is not a loopback address: admin.token is required") !=
          std::string::npos);
}

TEST_CASE("reserved and unknown librdkafka properties are reported without their values") {
    TempFile f(R"(kafka:
  brokers: 127.0.0.1:9092
  client:
    enable.idempotence: "hide-me-1"
    no.such.property: hide-me-2
)");
    auto r = check(f.path());
    CHECK(r.code == 1);
    CHECK(r.output.find("enable.idempotence") != std::string::npos);
    CHECK(r.output.find("no.such.property") != std::string::npos);
    CHECK(r.output.find("hide-me") == std::string::npos);
}

TEST_CASE("substitution: unset variables and unreadable files are named, secrets never shown") {
    TempFile f(R"(admin:
  token: ${env:OMNIBUS_T_UNSET_VAR}
kafka:
  brokers: 127.0.0.1:9092
  partitions: ${env:OMNIBUS_T_SECRET_NUM}
  client:
    sasl.password: ${file:/nonexistent/omnibus/secret}
)");
    auto r = check(f.path(), {"OMNIBUS_T_SECRET_NUM=hunter2-not-a-number"});
    CHECK(r.code == 1);
    CHECK(r.output.find("OMNIBUS_T_UNSET_VAR") != std::string::npos);
    CHECK(r.output.find("/nonexistent/omnibus/secret") != std::string::npos);
    CHECK(r.output.find(f.path() + ":5:15: kafka.partitions:") != std::string::npos);
    CHECK(r.output.find("hunter2") == std::string::npos);
}

TEST_CASE("a missing file and a YAML syntax error are one clear message each") {
    auto missing = check("/nonexistent/omnibus.yaml");
    CHECK(missing.code == 1);
    CHECK(missing.output.find("/nonexistent/omnibus.yaml: cannot read: No such file or directory") != std::string::npos);

    TempFile f("kafka:\n  embedded: true\n  brokers: [a, b\n");
    auto r = check(f.path());
    CHECK(r.code == 1);
    CHECK(r.output.find(f.path() + ":") != std::string::npos);
    CHECK(r.output.find("1 problem") != std::string::npos);
}

TEST_CASE("a routing rules file is checked with the config: its problems at its own positions") {
    TempFile rules(R"(version: 1
rules:
  - name: refunds
    match:
      intent: refund_please
    route: human
  - name: refunds
    route: robot
)");
    TempFile f("kafka:\n  embedded: true\npipeline:\n  routing:\n    rules_file: " + rules.path() + "\n");
    auto r = check(f.path());
    CHECK(r.code == 1);
    INFO(r.output);
    CHECK(r.output.find(rules.path() + ":5:15:") != std::string::npos);  // unknown intent
    CHECK(r.output.find(rules.path() + ":7:") != std::string::npos);     // the name again
    CHECK(r.output.find(rules.path() + ":8:") != std::string::npos);     // no such route

    // Relative to the config file; a good file passes.
    TempFile good("version: 1\nrules:\n  - name: everything\n    route: ai\n");
    const std::string name = good.path().substr(good.path().rfind('/') + 1);
    TempFile g("kafka:\n  embedded: true\npipeline:\n  routing:\n    rules_file: " + name + "\n");
    auto ok = check(g.path());
    CHECK(ok.code == 0);
    TempFile missing("kafka:\n  embedded: true\npipeline:\n  routing:\n    rules_file: /nonexistent/routing.yaml\n");
    auto gone = check(missing.path());
    CHECK(gone.code == 1);
    CHECK(gone.output.find("/nonexistent/routing.yaml") != std::string::npos);
}

TEST_CASE("omnibusd --explain-route shows the rule a message hits and why, with the configured rules or the built-in ones") {
    TempFile msg(R"({"envelope": {"schema_version": 1, "id": "e-1", "channel": {"type": "whatsapp", "name": "wa"},
 "direction": "inbound", "sender": {"id": "whatsapp:34600000001"},
 "content": {"type": "text", "text": "quiero un reembolso YA o hago contracargo"},
 "received_at": "2026-12-03T10:00:00Z", "platform": {"message_id": "wamid.1"}, "language": "es",
 "intent": {"name": "return_refund", "confidence": 0.9}, "sentiment": {"label": "negative", "score": -0.8}},
 "context": {"now": "2026-12-03T10:00:00Z"}})",
                 ".json");
    Process builtin({omnibusd_path(), "--explain-route", msg.path()});
    REQUIRE(builtin.wait_exit(10s));
    CHECK(builtin.exit_code() == 0);
    CHECK(builtin.output().find("rule human_requested (line") != std::string::npos);
    CHECK(builtin.output().find("found 'contracargo'") != std::string::npos);
    CHECK(builtin.output().find("route: human rule=angry_refund priority=90 queue=es-returns") != std::string::npos);

    TempFile rules("version: 1\nrules:\n  - name: all_to_people\n    route: human\n    priority: 5\n");
    TempFile cfg("kafka:\n  embedded: true\npipeline:\n  routing:\n    rules_file: " + rules.path() + "\n");
    Process mine({omnibusd_path(), "--explain-route", msg.path(), "--config", cfg.path(), "--json"});
    REQUIRE(mine.wait_exit(10s));
    CHECK(mine.exit_code() == 0);
    CHECK(mine.output().find(R"("route":{"target":"human","rule":"all_to_people","priority":5)") != std::string::npos);

    TempFile bad("{\"envelope\": 3}", ".json");
    Process refused({omnibusd_path(), "--explain-route", bad.path()});
    REQUIRE(refused.wait_exit(10s));
    CHECK(refused.exit_code() == 1);
    CHECK(refused.output().find(bad.path() + ": ") != std::string::npos);
}
