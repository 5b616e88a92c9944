// The admin API over real loopback HTTP: health, readiness, metrics, status,
// added routes, and the bearer token required off loopback.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>

#include "daemon/admin_server.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::daemon;

namespace {
struct Fixture {
    metrics::Registry registry;
    std::atomic<bool> kafka_ok{false};
    AdminServer server;
    explicit Fixture(AdminSettings s = {"127.0.0.1", 0, {}})
        : server(
              s, registry,
              [this] {
                  return std::vector<ReadinessCheck>{{"kafka", kafka_ok.load(), kafka_ok ? "" : "no broker reachable"},
                                                     {"topics", true, ""}};
              },
              [] { return std::string("{\"version\":\"test\"}"); }) {}
    httplib::Client client() { return httplib::Client("127.0.0.1", server.port()); }
};
}  // namespace

TEST_CASE("healthz answers ok and status returns the status JSON") {
    Fixture f;
    f.server.start();
    auto c = f.client();
    auto r = c.Get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "ok\n");
    r = c.Get("/v1/status");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type") == "application/json");
    CHECK(r->body == "{\"version\":\"test\"}");
}

TEST_CASE("readyz is 503 with the failing check until every check passes") {
    Fixture f;
    f.server.start();
    auto c = f.client();
    auto r = c.Get("/readyz");
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body.find("\"ready\":false") != std::string::npos);
    CHECK(r->body.find("no broker reachable") != std::string::npos);
    f.kafka_ok = true;
    r = c.Get("/readyz");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body.find("\"ready\":true") != std::string::npos);
}

TEST_CASE("metrics are served in the Prometheus text format") {
    Fixture f;
    f.registry.counter("omnibus_test_things_total", "Things.", {{"channel", "wa"}}).inc(5);
    f.server.start();
    auto c = f.client();
    auto r = c.Get("/metrics");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
    CHECK(r->body.find("omnibus_test_things_total{channel=\"wa\"} 5\n") != std::string::npos);
}

TEST_CASE("added routes receive captures, query and body, and unknown paths are 404 JSON") {
    Fixture f;
    f.server.route("POST", R"(/v1/customers/([^/]+)/identities)", [](const AdminRequest& r) {
        return AdminResponse{201, "application/json",
                             "{\"id\":\"" + r.matches.at(1) + "\",\"body\":" + r.body + ",\"q\":\"" +
                                 r.query_param("x", "none") + "\"}"};
    });
    f.server.start();
    auto c = f.client();
    auto r = c.Post("/v1/customers/c42/identities?x=1", "{\"a\":1}", "application/json");
    REQUIRE(r);
    CHECK(r->status == 201);
    CHECK(r->body == "{\"id\":\"c42\",\"body\":{\"a\":1},\"q\":\"1\"}");
    r = c.Get("/nope");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(r->body.find("not found") != std::string::npos);
}

TEST_CASE("a handler that throws answers 500 without the exception text") {
    Fixture f;
    f.server.route("GET", "/v1/boom", [](const AdminRequest&) -> AdminResponse {
        throw std::runtime_error("secret internals");
    });
    f.server.start();
    auto c = f.client();
    auto r = c.Get("/v1/boom");
    REQUIRE(r);
    CHECK(r->status == 500);
    CHECK(r->body.find("secret internals") == std::string::npos);
}

TEST_CASE("loopback detection") {
    CHECK(is_loopback_host("127.0.0.1"));
    CHECK(is_loopback_host("127.1.2.3"));
    CHECK(is_loopback_host("::1"));
    CHECK(is_loopback_host("[::1]"));
    CHECK(is_loopback_host("localhost"));
    CHECK_FALSE(is_loopback_host("0.0.0.0"));
    CHECK_FALSE(is_loopback_host("::"));
    CHECK_FALSE(is_loopback_host("10.1.2.3"));
    CHECK_FALSE(is_loopback_host("example.com"));
}

TEST_CASE("off loopback a token is required, and once set every request needs it") {
    // Refused before anything is bound.
    CHECK_THROWS_WITH((Fixture(AdminSettings{"0.0.0.0", 0, {}})), Catch::Contains("admin.token is required"));

    Fixture f(AdminSettings{"127.0.0.1", 0, Secret{"s3cret-token"}});
    f.server.start();
    auto c = f.client();
    auto r = c.Get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(r->get_header_value("WWW-Authenticate") == "Bearer");

    r = c.Get("/healthz", httplib::Headers{{"Authorization", "Bearer wrong"}});
    REQUIRE(r);
    CHECK(r->status == 401);

    r = c.Get("/healthz", httplib::Headers{{"Authorization", "Bearer s3cret-token"}});
    REQUIRE(r);
    CHECK(r->status == 200);

    f.server.set_token(Secret{"rotated"});
    r = c.Get("/healthz", httplib::Headers{{"Authorization", "Bearer s3cret-token"}});
    REQUIRE(r);
    CHECK(r->status == 401);
    r = c.Get("/healthz", httplib::Headers{{"Authorization", "Bearer rotated"}});
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("binding a port already in use is a clear error") {
    Fixture a;
    a.server.start();
    Fixture b(AdminSettings{"127.0.0.1", a.server.port(), {}});
    CHECK_THROWS_WITH(b.server.start(), Catch::Contains("cannot bind 127.0.0.1:"));
}
