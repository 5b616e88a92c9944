// The edge's limits over real sockets: body and header sizes, slow clients,
// idle connections, connections per address and in total, the per-channel
// rate, and malformed requests.
#include <catch2/catch.hpp>

#include "edge_fixture.h"
#include "support/wait.h"

using namespace omnibus;
using namespace omnibus::test;

TEST_CASE("a body over the limit is 413, whether announced by Content-Length or chunked") {
    std::atomic<int> calls{0};
    auto s = test_settings();
    s.max_body_bytes = 1000;
    Edge e({{"wa",
             {"POST"},
             [&](edge::Request, edge::Responder r) {
                 ++calls;
                 r.respond(200, "{}");
             }}},
           s);
    {
        RawClient c(e.port());
        REQUIRE(c.send(post("/webhooks/wa", std::string(1000, 'a'))));  // exactly the limit is fine
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        REQUIRE(c.send(post("/webhooks/wa", std::string(1001, 'a'))));
        r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 413);
        CHECK(r->body == "{\"error\":\"payload too large\"}");
        CHECK(r->closes());
        CHECK(c.wait_closed(5s));
    }
    {
        // Announced far over the limit: refused before the body is sent.
        RawClient c(e.port());
        REQUIRE(c.send("POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 413);
    }
    {
        RawClient c(e.port());
        std::string chunked = "POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (int i = 0; i < 5; ++i) chunked += "12c\r\n" + std::string(300, 'b') + "\r\n";  // 1500 bytes
        chunked += "0\r\n\r\n";
        REQUIRE(c.send(chunked));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 413);
        CHECK(c.wait_closed(5s));
    }
    CHECK(calls == 1);
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"body_too_large\"}") == 3);
    CHECK(e.metric("omnibus_edge_requests_total{channel=\"wa\",code=\"413\"}") == 3);
}

TEST_CASE("headers over the limit are 431") {
    auto s = test_settings();
    s.max_header_bytes = 2048;
    Edge e({{"wa", {"POST"}, ok_handler()}}, s);
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", "{}", "X-Big: " + std::string(4000, 'x') + "\r\n")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
    CHECK(r->body == "{\"error\":\"request headers too large\"}");
    CHECK(c.wait_closed(5s));
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"headers_too_large\"}") == 1);

    RawClient ok(e.port());
    REQUIRE(ok.send(post("/webhooks/wa", "{}", "X-Fine: " + std::string(1000, 'x') + "\r\n")));
    r = ok.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("slowloris: headers trickled in slower than header_timeout get the connection closed") {
    auto s = test_settings();
    s.header_timeout = 400ms;
    s.idle_timeout = 10s;
    Edge e({{"wa", {"POST"}, ok_handler()}}, s);
    const std::string request = post("/webhooks/wa", "{}");

    auto trickle = [&](RawClient& c) {
        // One byte every 40 ms: each byte well within any per-read timeout, the
        // whole header (~90 bytes, ~3.6 s) far beyond header_timeout.
        const auto t0 = std::chrono::steady_clock::now();
        for (char ch : request) {
            if (!c.send(std::string_view(&ch, 1)) || c.wait_closed(40ms)) break;
        }
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(c.closed());
        CHECK(c.pending().empty());  // no answer: just closed
        return took;
    };

    SECTION("on a fresh connection") {
        RawClient c(e.port());
        auto took = trickle(c);
        CHECK(took >= 350ms);
        CHECK(took < 2s);
    }
    SECTION("on a kept-alive connection, after a quick first request") {
        RawClient c(e.port());
        REQUIRE(c.send(request));
        REQUIRE(c.read_response());
        auto took = trickle(c);
        CHECK(took >= 350ms);
        CHECK(took < 2s);
    }
    // The client sees the close a moment before the server counts it.
    CHECK(wait_until([&] { return e.metric("omnibus_edge_rejected_total{reason=\"timeout\"}") == 1; }, 5s));
    CHECK(wait_until([&] { return e.server.connections() == 0; }, 5s));
}

TEST_CASE("a body slower than body_timeout gets the connection closed") {
    auto s = test_settings();
    s.body_timeout = 300ms;
    Edge e({{"wa", {"POST"}, ok_handler()}}, s);
    RawClient c(e.port());
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(c.send("POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789"));
    CHECK(c.wait_closed(3s));
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took >= 250ms);
    CHECK(took < 2500ms);
    CHECK(wait_until([&] { return e.metric("omnibus_edge_rejected_total{reason=\"timeout\"}") == 1; }, 5s));
}

TEST_CASE("an idle kept-alive connection is closed after idle_timeout, and a silent new one after header_timeout") {
    auto s = test_settings();
    s.idle_timeout = 300ms;
    s.header_timeout = 300ms;
    Edge e({{"wa", {"POST"}, ok_handler()}}, s);
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    REQUIRE(c.read_response());
    auto t0 = std::chrono::steady_clock::now();
    CHECK(c.wait_closed(3s));
    CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);

    RawClient silent(e.port());
    t0 = std::chrono::steady_clock::now();
    CHECK(silent.wait_closed(3s));
    CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
    // Idle closes are not rejections.
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"timeout\"}") == 0);
}

TEST_CASE("connections beyond max_connections_per_ip are closed at once") {
    auto s = test_settings();
    s.max_connections_per_ip = 2;
    Edge e({{"wa", {"POST"}, ok_handler()}}, s);
    auto a = std::make_unique<RawClient>(e.port());
    RawClient b(e.port());
    REQUIRE(wait_until([&] { return e.server.connections() == 2; }, 5s));

    RawClient excess(e.port());  // the kernel accepts it; the edge closes it
    CHECK(excess.wait_closed(3s));
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"too_many_connections\"}") == 1);

    for (RawClient* c : {a.get(), &b}) {  // the first two still work
        REQUIRE(c->send(post("/webhooks/wa", "{}")));
        auto r = c->read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
    }
    a.reset();
    REQUIRE(wait_until([&] { return e.server.connections() == 1; }, 5s));
    RawClient again(e.port());
    REQUIRE(again.send(post("/webhooks/wa", "{}")));
    auto r = again.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("connections beyond max_connections are closed at once") {
    auto s = test_settings();
    s.max_connections = 1;
    s.max_connections_per_ip = 0;
    Edge e({{"wa", {"POST"}, ok_handler()}}, s);
    RawClient a(e.port());
    REQUIRE(wait_until([&] { return e.server.connections() == 1; }, 5s));
    RawClient excess(e.port());
    CHECK(excess.wait_closed(3s));
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"too_many_connections\"}") == 1);
    REQUIRE(a.send(post("/webhooks/wa", "{}")));
    REQUIRE(a.read_response());
}

TEST_CASE("past the channel's rate the edge answers 429 with Retry-After") {
    // 0.5/s with a burst of 3: three pass at once, the fourth waits ~2 s.
    Edge e({{"wa", {"POST"}, ok_handler(), {0.5, 3}}, {"free", {"POST"}, ok_handler()}});
    RawClient c(e.port());
    std::vector<int> statuses;
    std::string retry_after;
    for (int i = 0; i < 4; ++i) {
        REQUIRE(c.send(post("/webhooks/wa", "{}")));
        auto r = c.read_response();
        REQUIRE(r);
        statuses.push_back(r->status);
        if (r->status == 429) {
            retry_after = r->header("Retry-After");
            CHECK(r->body == "{\"error\":\"too many requests\"}");
            CHECK_FALSE(r->closes());
        }
    }
    CHECK(statuses == std::vector<int>{200, 200, 200, 429});
    CHECK((retry_after == "1" || retry_after == "2"));
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"rate_limited\"}") == 1);
    CHECK(e.metric("omnibus_edge_requests_total{channel=\"wa\",code=\"429\"}") == 1);
    // Other channels have their own budget.
    REQUIRE(c.send(post("/webhooks/free", "{}")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("malformed requests get a 400 and a close, and the server carries on") {
    Edge e({{"wa", {"GET", "POST"}, ok_handler()}});
    static const char tls_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff garbage\r\n\r\n";
    const std::vector<std::string> bad = {
        std::string(tls_hello, sizeof tls_hello - 1),                                         // a TLS hello
        "G(T /webhooks/wa HTTP/1.1\r\nHost: t\r\n\r\n",                                       // bad method
        "GET /webhooks/wa\r\n\r\n",                                                           // HTTP/0.9-ish
        "GET /webhooks/wa HTTP/1.1\r\n\r\n",                                                  // 1.1 without Host
        "GET /webhooks/wa HTTP/1.1\r\nHost: t\r\nbad header line\r\n\r\n",                    // no colon
        "POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n",               // bad length
        "POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  // bad chunk
        "GET /webhooks/wa HTTP/9.9\r\nHost: t\r\n\r\n",                                       // unknown version
    };
    for (const auto& request : bad) {
        INFO(request);
        RawClient c(e.port());
        REQUIRE(c.send(request));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK((r->status == 400 || r->status == 505));
        CHECK(r->closes());
        CHECK(r->body.find("error") != std::string::npos);
        CHECK(c.wait_closed(5s));
    }
    RawClient c(e.port());
    REQUIRE(c.send(get("/webhooks/wa")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}
