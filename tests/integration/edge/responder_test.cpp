// Asynchronous answers: a Responder called later from another thread, dropped
// unanswered, called after the request deadline, a handler that throws, and
// stop() with requests in flight.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "edge_fixture.h"
#include "log/log.h"
#include "support/wait.h"

using namespace omnibus;
using namespace omnibus::test;

namespace {

// Keeps the Responders handlers hand over, for the test to answer when it wants.
struct Parked {
    std::mutex mu;
    std::vector<edge::Responder> responders;
    edge::Handler handler() {
        return [this](edge::Request, edge::Responder r) {
            std::lock_guard lock(mu);
            responders.push_back(std::move(r));
        };
    }
    size_t count() {
        std::lock_guard lock(mu);
        return responders.size();
    }
    edge::Responder take() {
        std::lock_guard lock(mu);
        auto r = responders.front();
        responders.erase(responders.begin());
        return r;
    }
};

// Captures the log lines of one test.
struct LogCapture {
    std::mutex mu;
    std::string text;
    LogCapture() {
        log::set_sink([this](std::string_view line) {
            std::lock_guard lock(mu);
            text += line;
        });
    }
    ~LogCapture() { log::set_sink(nullptr); }
    std::string get() {
        std::lock_guard lock(mu);
        return text;
    }
};

}  // namespace

TEST_CASE("a responder called later from another thread answers the request") {
    Parked parked;
    Edge e({{"wa", {"POST"}, parked.handler()}});
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    // Nothing is answered while the handler's work is pending.
    CHECK_FALSE(c.read_response(50ms));

    edge::Responder r = parked.take();
    std::thread kafka_poll_thread([r] {
        edge::Response resp = edge::Response::json(202, "{\"queued\":true}");
        resp.headers.push_back({"X-Request-Id", "abc"});
        CHECK(r.respond(std::move(resp)));
    });
    kafka_poll_thread.join();
    CHECK(r.answered());
    CHECK_FALSE(r.respond(200, "{}"));  // only the first answer counts

    auto resp = c.read_response();
    REQUIRE(resp);
    CHECK(resp->status == 202);
    CHECK(resp->body == "{\"queued\":true}");
    CHECK(resp->header("X-Request-Id") == "abc");
    // Still usable afterwards.
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    parked.take().respond(204, "ignored");
    resp = c.read_response();
    REQUIRE(resp);
    CHECK(resp->status == 204);
    CHECK(resp->body.empty());
    CHECK(e.metric("omnibus_edge_requests_total{channel=\"wa\",code=\"202\"}") == 1);
}

TEST_CASE("a responder dropped without an answer gives a 500, at once or later") {
    LogCapture logs;
    Parked parked;
    Edge e({{"now", {"POST"}, [](edge::Request, edge::Responder) {}}, {"later", {"POST"}, parked.handler()}});
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/now", "{}")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 500);
    CHECK(r->body == "{\"error\":\"internal error\"}");

    REQUIRE(c.send(post("/webhooks/later", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    std::thread([&] { parked.take(); }).join();  // the last copy dies on another thread
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 500);
    CHECK_FALSE(r->closes());
    CHECK(logs.get().find("dropped its responder") != std::string::npos);
}

TEST_CASE("past the request deadline the edge answers 503 and a late answer is ignored") {
    Parked parked;
    auto s = test_settings();
    s.request_timeout = 200ms;
    Edge e({{"wa", {"POST"}, parked.handler()}}, s);
    RawClient c(e.port());
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    auto r = c.read_response();
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->body == "{\"error\":\"timeout\"}");
    CHECK(took >= 190ms);
    CHECK(took < 3s);
    REQUIRE(parked.count() == 1);
    edge::Responder late = parked.take();
    CHECK_FALSE(late.respond(200, "{}"));  // already answered by the server
    CHECK(e.metric("omnibus_edge_rejected_total{reason=\"timeout\"}") == 1);

    // The connection goes on; nothing stray arrives from the late answer.
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    parked.take().respond(200, "{\"second\":true}");
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "{\"second\":true}");
}

TEST_CASE("a handler that throws gives a 500 without the exception text") {
    LogCapture logs;
    Edge e({{"wa",
             {"POST"},
             [](edge::Request, edge::Responder) -> void {
                 throw std::runtime_error("secret internal detail at parser.cpp:42");
             }},
            {"after", {"POST"}, [](edge::Request, edge::Responder r) {
                 r.respond(200, "{}");
                 throw std::runtime_error("thrown after answering");
             }}});
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 500);
    CHECK(r->body == "{\"error\":\"internal error\"}");
    CHECK(r->body.find("secret") == std::string::npos);
    CHECK(logs.get().find("secret internal detail") != std::string::npos);  // it is logged

    REQUIRE(c.send(post("/webhooks/after", "{}")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
}

TEST_CASE("an invalid response from a handler becomes a 500") {
    Edge e({{"wa",
             {"POST"},
             [](edge::Request, edge::Responder r) {
                 edge::Response resp = edge::Response::json(200, "{}");
                 resp.headers.push_back({"X-Evil", "a\r\nSet-Cookie: x=1"});
                 r.respond(std::move(resp));
             }},
            {"status", {"POST"}, [](edge::Request, edge::Responder r) { r.respond(99, "{}"); }}});
    RawClient c(e.port());
    for (const char* path : {"/webhooks/wa", "/webhooks/status"}) {
        REQUIRE(c.send(post(path, "{}")));
        auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->status == 500);
        CHECK(r->header("Set-Cookie").empty());
    }
}

TEST_CASE("stop() lets a request in flight finish, then closes") {
    Parked parked;
    auto s = test_settings();
    s.shutdown_timeout = 5s;
    auto e = std::make_unique<Edge>(std::vector<edge::ChannelRoute>{{"wa", {"POST"}, parked.handler()}}, s);
    RawClient busy(e->port());
    RawClient idle(e->port());
    RawClient silent(e->port());  // connected, never sent a byte
    REQUIRE(idle.send(post("/webhooks/wa", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    parked.take().respond(200, "{}");
    REQUIRE(idle.read_response());
    REQUIRE(busy.send(post("/webhooks/wa", "{\"in\":\"flight\"}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));

    const auto t0 = std::chrono::steady_clock::now();
    auto stopped = std::async(std::launch::async, [&] { e->server.stop(); });
    // The idle and silent connections are closed at once; the busy one waits for its answer.
    CHECK(idle.wait_closed(3s));
    CHECK(silent.wait_closed(1s));
    CHECK(stopped.wait_for(100ms) == std::future_status::timeout);
    parked.take().respond(200, "{\"done\":true}");
    auto r = busy.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "{\"done\":true}");
    CHECK(r->closes());
    CHECK(busy.wait_closed(3s));
    REQUIRE(stopped.wait_for(5s) == std::future_status::ready);
    CHECK(std::chrono::steady_clock::now() - t0 < 4s);
    CHECK(e->server.connections() == 0);
    // Not accepting any more.
    bool refused = false;
    try {
        RawClient late(e->port());
        refused = !late.send(get("/webhooks/wa")) || !late.read_response(1s);
    } catch (const std::runtime_error&) {
        refused = true;
    }
    CHECK(refused);
}

TEST_CASE("stop() answers 503 to what is still pending at shutdown_timeout, and a late answer is harmless") {
    Parked parked;
    auto s = test_settings();
    s.shutdown_timeout = 300ms;
    auto e = std::make_unique<Edge>(std::vector<edge::ChannelRoute>{{"wa", {"POST"}, parked.handler()}}, s);
    RawClient c(e->port());
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    const auto t0 = std::chrono::steady_clock::now();
    e->server.stop();
    CHECK(std::chrono::steady_clock::now() - t0 < 3s);
    auto r = c.read_response(1s);
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->closes());
    edge::Responder late = parked.take();
    CHECK_FALSE(late.respond(200, "{}"));
    e.reset();                             // the server is gone altogether
    CHECK_FALSE(late.respond(200, "{}"));  // still harmless
}

TEST_CASE("a responder that outlives the server can still be answered or dropped safely") {
    Parked parked;
    auto s = test_settings();
    s.shutdown_timeout = 0ms;
    {
        Edge e({{"wa", {"POST"}, parked.handler()}}, s);
        RawClient c(e.port());
        REQUIRE(c.send(post("/webhooks/wa", "{}")));
        REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));
    }
    edge::Responder r = parked.take();
    CHECK_FALSE(r.respond(200, "{}"));
}

TEST_CASE("work posted to the edge runs on its workers in turn, and may answer requests there") {
    metrics::Registry registry;
    {
        edge::EdgeServer idle(test_settings(), registry);
        CHECK_FALSE(idle.post([] { FAIL("ran on an edge that never started"); }));
    }

    Parked parked;
    Edge e({{"wa", {"POST"}, parked.handler()}});  // two workers
    RawClient c(e.port());
    REQUIRE(c.send(post("/webhooks/wa", "{}")));
    REQUIRE(wait_until([&] { return parked.count() == 1; }, 5s));

    std::mutex mu;
    std::vector<std::thread::id> ran_on;
    edge::Responder r = parked.take();
    for (int i = 0; i < 4; ++i)
        REQUIRE(e.server.post([&, i, r]() mutable {
            std::lock_guard lock(mu);
            ran_on.push_back(std::this_thread::get_id());
            if (i == 3) CHECK(r.respond(200, "{\"from\":\"a worker\"}"));
        }));
    auto resp = c.read_response();
    REQUIRE(resp);
    CHECK(resp->status == 200);
    CHECK(resp->body == "{\"from\":\"a worker\"}");
    REQUIRE(wait_until(
        [&] {
            std::lock_guard lock(mu);
            return ran_on.size() == 4;
        },
        5s));
    {
        std::lock_guard lock(mu);
        std::set<std::thread::id> threads(ran_on.begin(), ran_on.end());
        CHECK(threads.size() == 2);  // the two workers took turns
        CHECK(threads.count(std::this_thread::get_id()) == 0);
    }

    e.server.stop();
    CHECK_FALSE(e.server.post([] { FAIL("ran on a stopped edge"); }));
}
