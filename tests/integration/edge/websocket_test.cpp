// WebSocket routes on the edge, against a client written from RFC 6455 (ws_client.h): the
// handshake and its refusals, text both ways and from other threads, the limits (binary,
// invalid UTF-8, oversize, a client that does not read), idle pings, stop(), and TLS.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "edge_fixture.h"
#include "support/process.h"
#include "support/wait.h"
#include "ws_client.h"

using namespace omnibus;
using namespace omnibus::test;

namespace {

// What an echo route saw, for the test thread to look at.
struct Seen {
    std::mutex mu;
    std::vector<edge::Request> upgrades;
    std::vector<std::string> messages;
    std::vector<uint16_t> closes;
    std::shared_ptr<edge::WebSocket> last;

    std::vector<uint16_t> close_codes() {
        std::lock_guard lock(mu);
        return closes;
    }
};

// "/chat/": accepts an upgrade whose token query parameter is "ok" (throws for "throw"),
// answers each message with "echo:" + it.
edge::WebSocketRoute echo_route(Seen& seen) {
    edge::WebSocketRoute r;
    r.prefix = "/chat/";
    r.accept = [&seen](const edge::Request& req,
                       std::shared_ptr<edge::WebSocket> ws) -> std::optional<edge::WebSocketHandlers> {
        const auto token = req.query_param("token");
        if (token == "throw") throw std::runtime_error("accept failed");
        if (token != "ok") return std::nullopt;
        {
            std::lock_guard lock(seen.mu);
            seen.upgrades.push_back(req);
            seen.last = ws;
        }
        edge::WebSocketHandlers h;
        h.on_message = [&seen, ws](std::string text) {
            {
                std::lock_guard lock(seen.mu);
                seen.messages.push_back(text);
            }
            ws->send("echo:" + text);
        };
        h.on_close = [&seen](uint16_t code) {
            std::lock_guard lock(seen.mu);
            seen.closes.push_back(code);
        };
        return h;
    };
    return r;
}

struct WsEdge {
    metrics::Registry registry;
    edge::EdgeServer server;
    WsEdge(std::vector<edge::WebSocketRoute> routes, edge::EdgeSettings s = test_settings())
        : server(std::move(s), registry) {
        server.add_channel({"wa", {"POST"}, ok_handler()});
        for (auto& r : routes) server.add_websocket(std::move(r));
        server.start();
    }
    uint16_t port() const { return server.port(); }
    double metric(std::string_view series) const { return metric_value(registry, series); }
};

std::string ws_target(std::string_view path = "/chat/shop-1") { return std::string(path) + "?token=ok"; }

}  // namespace

TEST_CASE("websocket: text both ways, from any thread, until the client closes") {
    Seen seen;
    auto route = echo_route(seen);
    // What accept sends at once goes out after the handshake, first.
    route.accept = [inner = route.accept](const edge::Request& req, std::shared_ptr<edge::WebSocket> ws) {
        auto h = inner(req, ws);
        if (h) ws->send("welcome");
        return h;
    };
    WsEdge e({std::move(route)});

    WsClient c(e.port(), ws_target());
    auto hs = c.handshake();
    REQUIRE(hs.status == 101);
    CHECK(c.open());  // Sec-WebSocket-Accept matches the key
    auto welcome = c.read_message();
    REQUIRE(welcome);
    CHECK(welcome->payload == "welcome");
    {
        std::lock_guard lock(seen.mu);
        REQUIRE(seen.upgrades.size() == 1);
        CHECK(seen.upgrades[0].path == "/chat/shop-1");
        CHECK(seen.upgrades[0].channel == "chat");
        CHECK(seen.upgrades[0].client_address == "127.0.0.1");
        CHECK(seen.upgrades[0].header("Sec-WebSocket-Version") == "13");
    }

    for (std::string text : {std::string("hello"), std::string("h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD"),
                             std::string(20'000, 'x')}) {
        REQUIRE(c.send_text(text));
        auto m = c.read_message();
        REQUIRE(m);
        CHECK(m->opcode == 1);
        CHECK(m->payload == "echo:" + text);
    }
    // A message in three fragments arrives whole.
    REQUIRE(c.send_frame(1, "frag", false));
    REQUIRE(c.send_frame(0, "men", false));
    REQUIRE(c.send_frame(0, "ted", true));
    auto joined = c.read_message();
    REQUIRE(joined);
    CHECK(joined->payload == "echo:fragmented");

    // The handle sends from other threads, in order per thread.
    std::shared_ptr<edge::WebSocket> handle;
    {
        std::lock_guard lock(seen.mu);
        handle = seen.last;
    }
    std::thread pusher([&] {
        for (int i = 0; i < 50; ++i) CHECK(handle->send("push " + std::to_string(i)));
    });
    pusher.join();
    for (int i = 0; i < 50; ++i) {
        auto m = c.read_message();
        REQUIRE(m);
        CHECK(m->payload == "push " + std::to_string(i));
    }
    CHECK(e.metric("omnibus_edge_websocket_connections{route=\"chat\"}") == 1);
    CHECK(e.server.connections() == 1);

    // The client closes: the server answers the close frame, on_close gets the code, the
    // handle refuses to send.
    REQUIRE(c.send_close(1000));
    auto close = c.read_message();
    REQUIRE(close);
    CHECK(close->opcode == 8);
    CHECK(close->close_code() == 1000);
    // (This client keeps its socket open: the server ends the connection by itself, within
    // the handshake timeout, header_timeout.)
    const auto t_close = std::chrono::steady_clock::now();
    CHECK(c.raw().wait_closed(5s));
    REQUIRE(wait_until([&] { return seen.close_codes().size() == 1; }, 5s));
    CHECK(std::chrono::steady_clock::now() - t_close < 4s);
    CHECK(seen.close_codes()[0] == 1000);
    CHECK_FALSE(handle->send("too late"));
    REQUIRE(wait_until([&] { return e.server.connections() == 0; }, 5s));
    CHECK(e.metric("omnibus_edge_websocket_connections{route=\"chat\"}") == 0);
    CHECK(e.metric("omnibus_edge_websocket_messages_total{route=\"chat\",direction=\"in\"}") == 4);
    CHECK(e.metric("omnibus_edge_websocket_messages_total{route=\"chat\",direction=\"out\"}") == 55);

    // The server closes: handle->close() sends the close frame; the client answers it.
    WsClient c2(e.port(), ws_target());
    REQUIRE(c2.handshake().status == 101);
    REQUIRE(c2.read_message());  // the welcome
    {
        std::lock_guard lock(seen.mu);
        handle = seen.last;
    }
    handle->close(4000, "bye");
    auto bye = c2.read_message();
    REQUIRE(bye);
    CHECK(bye->opcode == 8);
    CHECK(bye->close_code() == 4000);
    CHECK(bye->payload.substr(2) == "bye");
    REQUIRE(c2.send_close(4000));
    CHECK(c2.wait_closed(5s));
    REQUIRE(wait_until([&] { return seen.close_codes().size() == 2; }, 5s));
    CHECK(seen.close_codes()[1] == 4000);
}

TEST_CASE("websocket: what is not an accepted upgrade is answered over HTTP") {
    Seen seen;
    WsEdge e({echo_route(seen)});

    auto refused = [&](std::string_view target, std::string_view extra = {}) {
        WsClient c(e.port(), target, extra);
        auto r = c.handshake();
        CHECK_FALSE(c.open());
        return r;
    };
    CHECK(refused("/chat/shop-1?token=bad").status == 403);
    CHECK(refused("/chat/shop-1?token=throw").status == 403);
    CHECK(refused("/elsewhere/x?token=ok").status == 404);

    RawClient plain(e.port());
    REQUIRE(plain.send(get("/chat/shop-1?token=ok")));
    auto r = plain.read_response();
    REQUIRE(r);
    CHECK(r->status == 426);
    CHECK(r->header("Upgrade") == "websocket");
    REQUIRE(plain.send(post("/chat/shop-1", "{}")));
    r = plain.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->header("Allow") == "GET");
    // The webhooks beside it are untouched.
    REQUIRE(plain.send(post("/webhooks/wa", "{}")));
    r = plain.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    std::lock_guard lock(seen.mu);
    CHECK(seen.upgrades.empty());
}

TEST_CASE("websocket: binary, invalid UTF-8, oversize messages and a client that does not read are closed") {
    Seen seen;
    auto route = echo_route(seen);
    route.max_message_bytes = 1024;
    route.max_queued_messages = 4;
    WsEdge e({std::move(route)});

    auto closed_with = [&](const std::function<void(WsClient&)>& offend) {
        const size_t before = seen.close_codes().size();
        WsClient c(e.port(), ws_target());
        REQUIRE(c.handshake().status == 101);
        offend(c);
        auto f = c.read_message();
        REQUIRE(f);
        CHECK(f->opcode == 8);
        c.send_close(f->close_code());
        CHECK(c.wait_closed(5s));
        REQUIRE(wait_until([&] { return seen.close_codes().size() == before + 1; }, 5s));
        CHECK(seen.close_codes().back() == f->close_code());
        return f->close_code();
    };
    CHECK(closed_with([](WsClient& c) { c.send_frame(2, "\x01\x02"); }) == 1003);
    CHECK(closed_with([](WsClient& c) { c.send_text("bad \xC3\x28 utf-8"); }) == 1007);
    CHECK(closed_with([](WsClient& c) { c.send_text(std::string(2000, 'y')); }) == 1009);
    {
        std::lock_guard lock(seen.mu);
        CHECK(seen.messages.empty());  // none of them reached the handler
    }

    // A client that reads nothing while the server sends: at max_queued_messages queued the
    // connection is closed (1008), within write_timeout even though the close frame cannot
    // get through either.
    const size_t before = seen.close_codes().size();
    WsClient c(e.port(), ws_target());
    REQUIRE(c.handshake().status == 101);
    std::shared_ptr<edge::WebSocket> handle;
    {
        std::lock_guard lock(seen.mu);
        handle = seen.last;
    }
    const std::string big(60'000, 'z');
    for (int i = 0; i < 2000 && handle->send(big); ++i) {
    }
    REQUIRE(wait_until([&] { return seen.close_codes().size() == before + 1; }, 15s));
    CHECK(seen.close_codes().back() == 1008);
    CHECK_FALSE(handle->send("after"));
    REQUIRE(wait_until([&] { return e.server.connections() == 0; }, 10s));
}

TEST_CASE("websocket: an idle client is pinged and closed when it does not answer, stop() says going away") {
    Seen seen;
    auto route = echo_route(seen);
    route.idle_timeout = 400ms;
    WsEdge e({std::move(route)});

    // Silent: a ping comes, and without a pong the connection is closed.
    WsClient silent(e.port(), ws_target());
    REQUIRE(silent.handshake().status == 101);
    auto ping = silent.read_frame(3s);
    REQUIRE(ping);
    CHECK(ping->opcode == 9);
    CHECK(silent.wait_closed(5s));
    REQUIRE(wait_until([&] { return seen.close_codes().size() == 1; }, 5s));
    CHECK(seen.close_codes()[0] == 1006);

    // Answering the pings keeps a connection open past several idle timeouts.
    WsClient alive(e.port(), ws_target());
    REQUIRE(alive.handshake().status == 101);
    CHECK_FALSE(alive.read_message(1500ms));  // answers pings meanwhile; no message comes
    REQUIRE(alive.send_text("still here"));
    auto m = alive.read_message();
    REQUIRE(m);
    CHECK(m->payload == "echo:still here");

    // stop(): the open connection gets a close frame with 1001, and stop() returns once the
    // client has answered it.
    std::thread stopper([&] { e.server.stop(); });
    auto going = alive.read_message(5s);
    REQUIRE(going);
    CHECK(going->opcode == 8);
    CHECK(going->close_code() == 1001);
    alive.send_close(1001);
    stopper.join();
    CHECK(alive.wait_closed(5s));
    REQUIRE(seen.close_codes().size() == 2);
    CHECK(seen.close_codes()[1] == 1001);
}

TEST_CASE("websocket: over TLS as over plain TCP") {
    TempDir dir;
    Seen seen;
    WsEdge e({echo_route(seen)}, tls_test_settings(dir));

    ClientTls tls;
    WsClient c(e.port(), ws_target(), {}, tls.ctx);
    REQUIRE(c.handshake().status == 101);
    CHECK(c.open());
    REQUIRE(c.send_text("over tls"));
    auto m = c.read_message();
    REQUIRE(m);
    CHECK(m->payload == "echo:over tls");
    {
        std::lock_guard lock(seen.mu);
        REQUIRE(seen.upgrades.size() == 1);
        CHECK(seen.upgrades[0].tls);
    }
    REQUIRE(c.send_close(1000));
    auto close = c.read_message();
    REQUIRE(close);
    CHECK(close->close_code() == 1000);
}

TEST_CASE("websocket: add_websocket checks its route") {
    metrics::Registry reg;
    edge::EdgeServer server(test_settings(), reg);
    Seen seen;
    auto with_prefix = [&](std::string p) {
        auto r = echo_route(seen);
        r.prefix = std::move(p);
        return r;
    };
    CHECK_THROWS_AS(server.add_websocket(with_prefix("chat")), std::invalid_argument);
    CHECK_THROWS_AS(server.add_websocket(with_prefix("/chat")), std::invalid_argument);
    CHECK_THROWS_AS(server.add_websocket(with_prefix("/Chat/")), std::invalid_argument);
    CHECK_THROWS_AS(server.add_websocket(with_prefix("/a/b/")), std::invalid_argument);
    CHECK_THROWS_AS(server.add_websocket(with_prefix("/webhooks/")), std::invalid_argument);
    auto no_accept = with_prefix("/app/");
    no_accept.accept = nullptr;
    CHECK_THROWS_AS(server.add_websocket(no_accept), std::invalid_argument);
    auto zero = with_prefix("/app/");
    zero.max_message_bytes = 0;
    CHECK_THROWS_AS(server.add_websocket(zero), std::invalid_argument);
    server.add_websocket(with_prefix("/app/"));
    CHECK_THROWS_AS(server.add_websocket(with_prefix("/app/")), std::invalid_argument);
    server.start();
    CHECK_THROWS_AS(server.add_websocket(with_prefix("/chat/")), std::logic_error);
}

TEST_CASE("websocket: connections count against the per-address limit like any other") {
    Seen seen;
    auto s = test_settings();
    s.max_connections_per_ip = 2;
    WsEdge e({echo_route(seen)}, s);
    WsClient a(e.port(), ws_target()), b(e.port(), ws_target());
    REQUIRE(a.handshake().status == 101);
    REQUIRE(b.handshake().status == 101);
    RawClient third(e.port());
    CHECK(third.wait_closed(5s));  // refused at accept
    // One WebSocket closes: its place is free again.
    REQUIRE(a.send_close(1000));
    REQUIRE(a.read_message());
    CHECK(a.wait_closed(5s));
    REQUIRE(wait_until([&] { return e.server.connections() == 1; }, 5s));
    RawClient fourth(e.port());
    REQUIRE(fourth.send(post("/webhooks/wa", "{}")));
    auto r = fourth.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}
