// omnibusd as a user runs it: start on the embedded cluster, health, readiness,
// status, topics visible to kcat, signals, reload, and Kafka unreachable.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "daemon_fixture.h"

using namespace omnibus::test;
using namespace std::chrono_literals;

namespace {

rapidjson::Document parse_json(const std::string& body) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

// A loopback port nothing listens on: bound, then closed.
int closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    int port = ntohs(a.sin_port);
    ::close(fd);
    return port;
}

}  // namespace

TEST_CASE("the daemon starts on the embedded cluster, is ready within two seconds and lists its topics") {
    auto t0 = std::chrono::steady_clock::now();
    Daemon d(kEmbeddedConfig);
    REQUIRE(d.admin_port() > 0);
    REQUIRE(d.wait_ready(2s));
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
    CHECK(d.wait_log("\"msg\":\"ready\""));

    auto health = d.get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(health->body == "ok\n");

    auto status = d.get("/v1/status");
    REQUIRE(status);
    REQUIRE(status->status == 200);
    auto doc = parse_json(status->body);
    CHECK(std::string(doc["version"].GetString()) == "0.1.0");
    CHECK(doc["uptime_seconds"].GetDouble() >= 0);
    CHECK(doc["channels"].IsArray());
    CHECK(doc["ready"].GetBool());
    std::string bootstrap = doc["kafka"]["bootstrap_servers"].GetString();
    CHECK(bootstrap.rfind("127.0.0.1:", 0) == 0);
    CHECK(doc["kafka"]["embedded"].GetBool());

    // An independent Kafka client sees every omnibus topic on those servers.
    int rc = -1;
    std::string listing = run_capture("kcat -L -b " + bootstrap + " -m 5 2>&1", &rc);
    CHECK(rc == 0);
    for (const char* t : {"omnibus.inbound", "omnibus.identity", "omnibus.outbox.ai", "omnibus.outbox.human",
                          "omnibus.replies", "omnibus.delivery", "omnibus.events", "omnibus.deadletter"})
        CHECK(listing.find(std::string("topic \"") + t + "\"") != std::string::npos);
    CHECK(listing.find("topic \"omnibus.inbound\" with 2 partitions") != std::string::npos);
    CHECK(listing.find("topic \"omnibus.identity\" with 1 partitions") != std::string::npos);

    // The public edge is up: an unknown channel is a JSON 404, nothing more.
    REQUIRE(d.edge_port() > 0);
    httplib::Client edge("127.0.0.1", d.edge_port());
    auto unknown = edge.Post("/webhooks/nope", "{}", "application/json");
    REQUIRE(unknown);
    CHECK(unknown->status == 404);
    CHECK(unknown->body.find("\"error\"") != std::string::npos);
    CHECK(std::string(doc["edge"]["listen"].GetString()) == "127.0.0.1:" + std::to_string(d.edge_port()));

    auto metrics = d.get("/metrics");
    REQUIRE(metrics);
    CHECK(metrics->body.find("omnibus_daemon_ready 1\n") != std::string::npos);
    CHECK(metrics->body.find("# TYPE omnibus_kafka_producer_queue_depth gauge") != std::string::npos);

    // Every log line is one JSON object with level, component and msg.
    std::istringstream lines(d.output());
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
        rapidjson::Document l;
        l.Parse(line.c_str());
        INFO(line);
        REQUIRE_FALSE(l.HasParseError());
        CHECK(l.HasMember("level"));
        CHECK(l.HasMember("component"));
        CHECK(l.HasMember("msg"));
        ++count;
    }
    CHECK(count >= 3);

    auto t1 = std::chrono::steady_clock::now();
    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(5s));
    CHECK(std::chrono::steady_clock::now() - t1 < 5s);
    CHECK(d.process().exit_code() == 0);
    CHECK(d.output().find("\"msg\":\"stopped\"") != std::string::npos);
}

TEST_CASE("SIGINT drains and exits cleanly within five seconds") {
    Daemon d(kEmbeddedConfig);
    REQUIRE(d.wait_ready(5s));
    d.process().signal(SIGINT);
    REQUIRE(d.process().wait_exit(5s));
    CHECK(d.process().exit_code() == 0);
    CHECK(d.output().find("SIGINT") != std::string::npos);
}

TEST_CASE("with Kafka unreachable the daemon runs, reports not-ready, and keeps retrying") {
    std::string cfg = "state_dir: /tmp/omnibus-test-state\nadmin:\n  listen: 127.0.0.1:0\nedge:\n  listen: 127.0.0.1:0\n"
                      "kafka:\n  brokers: 127.0.0.1:" +
                      std::to_string(closed_port()) + "\n  admin_timeout: 300ms\n";
    Daemon d(cfg);
    REQUIRE(d.admin_port() > 0);
    auto health = d.get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    auto ready = d.get("/readyz");
    REQUIRE(ready);
    CHECK(ready->status == 503);
    CHECK(ready->body.find("\"name\":\"kafka\",\"ok\":false") != std::string::npos);
    // It retries: a second failed attempt is logged, and the process is still up.
    REQUIRE(wait_until(
        [&] {
            std::string out = d.output();
            auto first = out.find("cannot ensure topics; retrying");
            return first != std::string::npos && out.find("cannot ensure topics; retrying", first + 1) != std::string::npos;
        },
        10s));
    CHECK(d.process().running());
    auto status = d.get("/v1/status");
    REQUIRE(status);
    auto doc = parse_json(status->body);
    CHECK_FALSE(doc["ready"].GetBool());
    CHECK_FALSE(doc["kafka"]["reachable"].GetBool());

    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(5s));
    CHECK(d.process().exit_code() == 0);
}

TEST_CASE("SIGHUP applies the log level, names changes that need a restart, and survives a broken file") {
    Daemon d(kEmbeddedConfig);
    REQUIRE(d.wait_ready(5s));

    std::string debug_cfg = kEmbeddedConfig;
    debug_cfg.replace(debug_cfg.find("level: info"), 11, "level: debug");
    debug_cfg.replace(debug_cfg.find("partitions: 2"), 13, "partitions: 4");
    d.write_config(debug_cfg);
    d.process().signal(SIGHUP);
    REQUIRE(d.wait_log("\"msg\":\"reloaded\""));
    CHECK(d.output().find("\"applied\":\"log.level\"") != std::string::npos);
    CHECK(d.output().find("needs a restart; still running on the old value\",\"option\":\"kafka.partitions\"") !=
          std::string::npos);

    d.file().write("kafka:\n  embedded: [oops\n");
    d.process().signal(SIGHUP);
    REQUIRE(d.wait_log("reload refused"));
    auto health = d.get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(d.process().running());

    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(5s));
    CHECK(d.process().exit_code() == 0);
}

TEST_CASE("a configured admin token is required on every request and never logged") {
    std::string cfg = std::string(kEmbeddedConfig) + "";
    cfg.replace(cfg.find("listen: 127.0.0.1:0"), 19, "listen: 127.0.0.1:0\n  token: ${env:OMNIBUS_T_TOKEN}");
    cfg.replace(cfg.find("level: info"), 11, "level: debug");
    cfg.replace(cfg.find("partitions: 2"), 13,
                "partitions: 2\n  client:\n    sasl.username: omnibus\n    sasl.password: ${env:OMNIBUS_T_KPW}");
    Daemon d(cfg, {"OMNIBUS_T_TOKEN=tok-SECRET-1234", "OMNIBUS_T_KPW=pw-SECRET-5678"});
    REQUIRE(d.admin_port() > 0);
    auto r = d.get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 401);
    REQUIRE(wait_until(
        [&] {
            auto ok = d.get("/readyz", {{"Authorization", "Bearer tok-SECRET-1234"}});
            return ok && ok->status == 200;
        },
        5s));
    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(5s));
    std::string out = d.output();
    CHECK(out.find("tok-SECRET-1234") == std::string::npos);
    CHECK(out.find("pw-SECRET-5678") == std::string::npos);
}

TEST_CASE("an admin port in use stops the start with a clear message and exit code 1") {
    Daemon first(kEmbeddedConfig);
    int port = first.admin_port();
    REQUIRE(port > 0);
    std::string cfg = kEmbeddedConfig;
    cfg.replace(cfg.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(port));
    Daemon second(cfg);
    REQUIRE(second.process().wait_exit(10s));
    CHECK(second.process().exit_code() == 1);
    CHECK(second.output().find("cannot bind 127.0.0.1:" + std::to_string(port)) != std::string::npos);
}

TEST_CASE("an invalid config never starts the daemon") {
    Daemon d("kafka:\n  embedded: maybe\n");
    REQUIRE(d.process().wait_exit(5s));
    CHECK(d.process().exit_code() == 1);
    CHECK(d.output().find(":2:13: kafka.embedded: expected") != std::string::npos);
}
