// HTTPS on the edge: a self-signed certificate made by the test, requests over
// TLS with keep-alive, plain HTTP on the TLS port, and unusable certificates.
#include <catch2/catch.hpp>

#include "edge_fixture.h"
#include "support/process.h"
#include "support/wait.h"

using namespace omnibus;
using namespace omnibus::test;
using Catch::Matchers::Contains;

TEST_CASE("with a certificate the edge speaks HTTPS, keep-alive included") {
    TempDir dir;
    const auto s = tls_test_settings(dir);
    std::atomic<bool> saw_tls{false};
    Edge e({{"wa",
             {"POST"},
             [&](edge::Request req, edge::Responder r) {
                 saw_tls = req.tls;
                 r.respond(200, "{\"len\":" + std::to_string(req.body.size()) + "}");
             }}},
           s);
    CHECK(e.server.tls());

    ClientTls tls;
    RawClient c(e.port(), tls.ctx);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(c.send(post("/webhooks/wa", std::string(447, 'x'))));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "{\"len\":447}");
    }
    CHECK(saw_tls);
    CHECK(e.server.connections() == 1);

    // Plain HTTP on the TLS port: the handshake fails and the connection closes.
    RawClient plain(e.port());
    REQUIRE(plain.send(post("/webhooks/wa", "{}")));
    CHECK(plain.wait_closed(5s));

    // Limits apply over TLS too.
    REQUIRE(c.send(get("/webhooks/wa")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
}

TEST_CASE("an HTTPS request from curl, when curl is installed") {
    int status = 0;
    run_capture("command -v curl >/dev/null 2>&1", &status);
    if (status != 0) {
        WARN("curl not installed; skipped");
        return;
    }
    TempDir dir;
    const auto s = tls_test_settings(dir);
    Edge e({{"wa",
             {"GET"},
             [](edge::Request req, edge::Responder r) {
                 r.respond(edge::Response::text(200, std::string(req.query_param("hub.challenge").value_or(""))));
             }}},
           s);
    const std::string url = "https://127.0.0.1:" + std::to_string(e.port()) + "/webhooks/wa?hub.challenge=42";
    // Two URLs: curl reuses the connection for the second.
    std::string out = run_capture("curl -sk --max-time 10 -w ' %{http_code}' '" + url + "' '" + url + "'", &status);
    CHECK(status == 0);
    CHECK(out == "42 20042 200");
}

TEST_CASE("an unusable certificate or key makes start() fail clearly") {
    TempDir dir;
    const std::string cert = dir.file("cert.pem"), key = dir.file("key.pem");
    write_self_signed_cert(cert, key);
    const std::string other_cert = dir.file("other.pem"), other_key = dir.file("other.key");
    write_self_signed_cert(other_cert, other_key);
    metrics::Registry registry;

    auto s = test_settings();
    s.cert_file = dir.file("missing.pem");
    s.key_file = key;
    edge::EdgeServer missing(s, registry);
    CHECK_THROWS_WITH(missing.start(), Contains("missing.pem"));

    s.cert_file = cert;
    s.key_file = other_key;
    edge::EdgeServer mismatched(s, registry);
    CHECK_THROWS_WITH(mismatched.start(), Contains("other.key"));

    s.key_file = "";
    CHECK_THROWS_AS(edge::EdgeServer(s, registry), std::invalid_argument);
}
