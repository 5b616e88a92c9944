// Request lookups, Response shorthands and Responder semantics (first answer
// wins, copies share the request, a dropped Responder still answers).
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "edge/request.h"

using namespace omnibus::edge;

namespace {
struct Recorder final : detail::Exchange {
    std::vector<Response>* out;
    explicit Recorder(std::vector<Response>* o) : out(o) {}
    ~Recorder() override {
        if (claim()) out->push_back(Response::error(500, "dropped"));
    }
    void deliver(Response&& r) override { out->push_back(std::move(r)); }
};
}  // namespace

TEST_CASE("headers are found case-insensitively and query parameters by exact name") {
    Request r;
    r.headers = {
        {"Content-Type", "application/json"}, {"X-Hub-Signature-256", "sha256=1"}, {"x-dup", "a"}, {"X-Dup", "b"}};
    r.query = {{"hub.mode", "subscribe"}, {"Hub.Mode", "other"}};
    CHECK(r.header("content-type") == "application/json");
    CHECK(r.header("X-HUB-SIGNATURE-256") == "sha256=1");
    CHECK(r.header("x-dup") == "a");
    CHECK_FALSE(r.header("missing"));
    CHECK(r.query_param("hub.mode") == "subscribe");
    CHECK(r.query_param("Hub.Mode") == "other");
    CHECK_FALSE(r.query_param("hub"));
}

TEST_CASE("error responses are small JSON with the message escaped") {
    auto r = Response::error(404, "not \"found\"");
    CHECK(r.status == 404);
    CHECK(r.content_type == "application/json");
    CHECK(r.body == "{\"error\":\"not \\\"found\\\"\"}");
    auto t = Response::text(200, "1158201444");
    CHECK(t.content_type == "text/plain; charset=utf-8");
}

TEST_CASE("only the first answer of all a Responder's copies counts") {
    std::vector<Response> out;
    {
        Responder a(std::make_shared<Recorder>(&out));
        Responder b = a;
        CHECK_FALSE(a.answered());
        CHECK(b.respond(201, "{}"));
        CHECK(a.answered());
        CHECK_FALSE(a.respond(200, "{}"));
        CHECK_FALSE(b.respond(Response::error(500, "x")));
    }
    REQUIRE(out.size() == 1);
    CHECK(out[0].status == 201);
}

TEST_CASE("the last copy of an unanswered Responder answers for it when destroyed") {
    std::vector<Response> out;
    {
        Responder a(std::make_shared<Recorder>(&out));
        Responder b = a;
        { Responder c = std::move(a); }
        CHECK(out.empty());
    }
    REQUIRE(out.size() == 1);
    CHECK(out[0].status == 500);
}

TEST_CASE("racing answers from many threads deliver exactly one") {
    std::vector<Response> out;
    {
        Responder r(std::make_shared<Recorder>(&out));
        std::atomic<int> won{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < 8; ++i)
            threads.emplace_back([r, i, &won] {
                if (r.respond(200 + i, "{}")) ++won;
            });
        for (auto& t : threads) t.join();
        CHECK(won == 1);
    }
    CHECK(out.size() == 1);
}

TEST_CASE("an empty Responder answers nothing") {
    Responder r;
    CHECK_FALSE(r);
    CHECK_FALSE(r.respond(200, "{}"));
    CHECK_FALSE(r.answered());
}
