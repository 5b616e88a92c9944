// The edge over real loopback sockets: keep-alive, pipelining, routing
// (404, 405 + Allow), query parsing, byte-exact bodies, HTTP/1.0, 100-continue,
// metrics, and start() failing clearly when the port is taken.
#include <catch2/catch.hpp>

#include <mutex>

#include "edge_fixture.h"
#include "support/wait.h"

using namespace omnibus;
using namespace omnibus::test;
using Catch::Matchers::Contains;

TEST_CASE("several requests are answered on one kept-alive connection") {
    std::atomic<int> calls{0};
    Edge e({{"wa", {"POST"}, [&](edge::Request req, edge::Responder r) {
                 ++calls;
                 r.respond(200, "{\"echo\":" + req.body + "}");
             }}});
    RawClient c(e.port());
    for (int i = 0; i < 5; ++i) {
        REQUIRE(c.send(post("/webhooks/wa", std::to_string(i))));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == "{\"echo\":" + std::to_string(i) + "}");
        CHECK(r->header("Content-Type") == "application/json");
        CHECK_FALSE(r->closes());
        CHECK_FALSE(r->header("Date").empty());
    }
    CHECK(calls == 5);
    CHECK(e.server.connections() == 1);
    CHECK(e.metric("omnibus_edge_connections") == 1);
    CHECK(e.metric("omnibus_edge_requests_total{channel=\"wa\",code=\"200\"}") == 5);
    CHECK(e.metric("omnibus_edge_request_duration_seconds_count{channel=\"wa\"}") == 5);
    c.close();
    CHECK(wait_until([&] { return e.server.connections() == 0; }, 5s));
    CHECK(e.metric("omnibus_edge_connections") == 0);
}

TEST_CASE("pipelined requests are answered in order even when the first answers last") {
    // The first request is answered 100 ms later from another thread; the
    // others at once. Their responses must still come back in request order.
    std::vector<std::thread> threads;
    std::mutex mu;
    Edge e({{"wa", {"POST"}, [&](edge::Request req, edge::Responder r) {
                 if (req.body == "first") {
                     std::lock_guard lock(mu);
                     threads.emplace_back([r, body = req.body] {
                         std::this_thread::sleep_for(100ms);  // the slow "Kafka acknowledgement"
                         r.respond(200, "\"" + body + "\"");
                     });
                 } else {
                     r.respond(200, "\"" + req.body + "\"");
                 }
             }}});
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", "first") + post("/webhooks/wa", "second") + post("/webhooks/wa", "third")));
    for (const char* expected : {"\"first\"", "\"second\"", "\"third\""}) {
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->body == expected);
    }
    std::lock_guard lock(mu);
    for (auto& t : threads) t.join();
}

TEST_CASE("unknown channels and other paths are 404 with a small JSON body") {
    Edge e({{"wa", {"POST"}, ok_handler()}});
    RawClient c(e.port());
    for (const char* target : {"/webhooks/nope", "/", "/webhooks/", "/webhooks/wa/extra", "/webhooks", "/admin"}) {
        INFO(target);
        REQUIRE(c.send(post(target, "{}")));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 404);
        CHECK(r->body == "{\"error\":\"not found\"}");
        CHECK(r->header("Content-Type") == "application/json");
    }
    CHECK(e.metric("omnibus_edge_requests_total{channel=\"unknown\",code=\"404\"}") == 6);
}

TEST_CASE("a method the channel does not take is 405 with an Allow header") {
    Edge e({{"wa", {"GET", "POST"}, ok_handler()}, {"tg", {"POST"}, ok_handler()}});
    RawClient c(e.port());
    REQUIRE(c.send("DELETE /webhooks/wa HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->header("Allow") == "GET, POST");
    CHECK(r->body == "{\"error\":\"method not allowed\"}");
    REQUIRE(c.send(get("/webhooks/tg")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->header("Allow") == "POST");
    REQUIRE(c.send(get("/webhooks/wa")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("the query string reaches the handler parsed and URL-decoded (WhatsApp verification)") {
    edge::Request seen;
    std::mutex mu;
    Edge e({{"wa", {"GET", "POST"}, [&](edge::Request req, edge::Responder r) {
                 auto challenge = req.query_param("hub.challenge");
                 {
                     std::lock_guard lock(mu);
                     seen = req;
                 }
                 if (req.query_param("hub.mode") == "subscribe" && req.query_param("hub.verify_token") == "s3cr&t é")
                     r.respond(edge::Response::text(200, std::string(challenge.value_or(""))));
                 else
                     r.respond(edge::Response::error(403, "forbidden"));
             }}});
    RawClient c(e.port());
    REQUIRE(
        c.send(get("/webhooks/wa?hub.mode=subscribe&hub.verify_token=s3cr%26t+%C3%A9&hub.challenge=1158201444"
                   "&empty=&flag")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "1158201444");
    CHECK(r->header("Content-Type") == "text/plain; charset=utf-8");
    std::lock_guard lock(mu);
    CHECK(seen.method == "GET");
    CHECK(seen.channel == "wa");
    CHECK(seen.path == "/webhooks/wa");
    CHECK(seen.target.find("hub.verify_token=s3cr%26t+%C3%A9") != std::string::npos);
    REQUIRE(seen.query.size() == 5);
    CHECK(seen.query[3] == std::pair<std::string, std::string>{"empty", ""});
    CHECK(seen.query[4] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(seen.client_address == "127.0.0.1");
    CHECK(seen.client_port != 0);
    CHECK_FALSE(seen.tls);
    CHECK(seen.header("HOST") == "test");
    CHECK_FALSE(seen.header("X-Missing"));
}

TEST_CASE("the body reaches the handler byte for byte, binary and invalid UTF-8 included") {
    std::string seen_length_body, seen_chunked_body, seen_signature;
    std::mutex mu;
    Edge e({{"wa", {"POST"}, [&](edge::Request req, edge::Responder r) {
                 std::lock_guard lock(mu);
                 if (req.header("Transfer-Encoding")) {
                     seen_chunked_body = req.body;
                 } else {
                     seen_length_body = req.body;
                     seen_signature = std::string(req.header("x-hub-signature-256").value_or(""));
                 }
                 r.respond(200, "{}");
             }}});
    std::string body;
    for (int i = 0; i < 256; ++i) body += static_cast<char>(i);
    body += "\xff\xfe\xc3\x28 {\"text\":\"\xe2\x82\"} \r\n\r\n\0tail";
    body.append(std::string("\0\0\r\n", 4));
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", body, "X-Hub-Signature-256: sha256=abc\r\n")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);

    // The same bytes, chunked in uneven pieces.
    std::string chunked = "POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (size_t off = 0; off < body.size();) {
        size_t n = std::min<size_t>(body.size() - off, 1 + off % 97);
        char len[16];
        std::snprintf(len, sizeof len, "%zx\r\n", n);
        chunked += len;
        chunked += body.substr(off, n);
        chunked += "\r\n";
        off += n;
    }
    chunked += "0\r\n\r\n";
    REQUIRE(c.send(chunked));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);

    std::lock_guard lock(mu);
    CHECK(seen_length_body.size() == body.size());
    CHECK(seen_length_body == body);
    CHECK(seen_chunked_body == body);
    CHECK(seen_signature == "sha256=abc");
}

TEST_CASE("HTTP/1.0 is answered and closed unless it asks for keep-alive") {
    Edge e({{"wa", {"GET"}, ok_handler()}});
    {
        RawClient c(e.port());
        REQUIRE(c.send("GET /webhooks/wa HTTP/1.0\r\n\r\n"));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 200);
        CHECK(r->closes());
        CHECK(c.wait_closed(5s));
    }
    RawClient c(e.port());
    REQUIRE(c.send("GET /webhooks/wa HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->header("Connection") == "keep-alive");
    REQUIRE(c.send("GET /webhooks/wa HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->closes());
    CHECK(c.wait_closed(5s));
}

TEST_CASE("Expect: 100-continue gets its interim response before the body is sent") {
    std::string seen;
    std::mutex mu;
    Edge e({{"wa", {"POST"}, [&](edge::Request req, edge::Responder r) {
                 std::lock_guard lock(mu);
                 seen = req.body;
                 r.respond(200, "{}");
             }}});
    RawClient c(e.port());
    REQUIRE(c.send("POST /webhooks/wa HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
    auto interim = c.read_response();
    REQUIRE(interim);
    CHECK(interim->status == 100);
    REQUIRE(c.send("hello"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    std::lock_guard lock(mu);
    CHECK(seen == "hello");
}

TEST_CASE("start() fails with a clear error when the port is taken") {
    Edge first({{"wa", {"POST"}, ok_handler()}});
    metrics::Registry registry;
    auto s = test_settings();
    s.port = first.port();
    edge::EdgeServer second(s, registry);
    second.add_channel({"wa", {"POST"}, ok_handler(), {}});
    CHECK_THROWS_WITH(second.start(), Contains("127.0.0.1:" + std::to_string(first.port())) && Contains("in use"));
    // The first one is unaffected.
    RawClient c(first.port());
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("channel registration refuses bad names, duplicates and late additions") {
    metrics::Registry registry;
    edge::EdgeServer s(test_settings(), registry);
    CHECK_THROWS_AS(s.add_channel({"Bad Name", {"POST"}, ok_handler(), {}}), std::invalid_argument);
    CHECK_THROWS_AS(s.add_channel({"", {"POST"}, ok_handler(), {}}), std::invalid_argument);
    CHECK_THROWS_AS(s.add_channel({"wa", {}, ok_handler(), {}}), std::invalid_argument);
    CHECK_THROWS_AS(s.add_channel({"wa", {"POST"}, nullptr, {}}), std::invalid_argument);
    s.add_channel({"wa", {"POST"}, ok_handler(), {}});
    CHECK_THROWS_AS(s.add_channel({"wa", {"POST"}, ok_handler(), {}}), std::invalid_argument);
    s.start();
    CHECK_THROWS_AS(s.add_channel({"tg", {"POST"}, ok_handler(), {}}), std::logic_error);
    CHECK_THROWS_AS(s.start(), std::logic_error);
}
