// The logger writes one valid JSON object per line, escapes what it must and
// never prints a Secret's value.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "config/secret.h"
#include "log/log.h"

using namespace omnibus;

namespace {
struct Capture {
    std::vector<std::string> lines;
    Capture() {
        log::set_sink([this](std::string_view l) { lines.emplace_back(l); });
    }
    ~Capture() { log::set_sink(nullptr); log::set_level(log::Level::info); }
};
}  // namespace

TEST_CASE("a log line is one JSON object with level, component, msg and fields") {
    Capture cap;
    log::Logger lg{"kafka"};
    lg.info("ready", {{"brokers", "127.0.0.1:9092"}, {"partitions", 6}, {"embedded", true}, {"ratio", 0.5}});
    REQUIRE(cap.lines.size() == 1);
    const std::string& l = cap.lines[0];
    CHECK(l.front() == '{');
    CHECK(l.substr(l.size() - 2) == "}\n");
    CHECK(l.find("\"level\":\"info\"") != std::string::npos);
    CHECK(l.find("\"component\":\"kafka\"") != std::string::npos);
    CHECK(l.find("\"msg\":\"ready\"") != std::string::npos);
    CHECK(l.find("\"brokers\":\"127.0.0.1:9092\"") != std::string::npos);
    CHECK(l.find("\"partitions\":6") != std::string::npos);
    CHECK(l.find("\"embedded\":true") != std::string::npos);
    CHECK(l.find("\"ratio\":0.5") != std::string::npos);
    CHECK(l.find("\"ts\":\"") != std::string::npos);
}

TEST_CASE("control characters, quotes and newlines are escaped so a line stays one line") {
    Capture cap;
    log::write(log::Level::warn, "edge", "bad \"input\"\nnext", {{"raw", std::string("a\x01\tb\\")}});
    REQUIRE(cap.lines.size() == 1);
    const std::string& l = cap.lines[0];
    CHECK(l.find('\n') == l.size() - 1);
    CHECK(l.find("bad \\\"input\\\"\\nnext") != std::string::npos);
    CHECK(l.find("a\\u0001\\tb\\\\") != std::string::npos);
}

TEST_CASE("a Secret field is logged as *** and never as its value") {
    Capture cap;
    Secret s{"hunter2-very-secret"};
    log::Logger{"config"}.error("token rejected", {{"token", s}});
    REQUIRE(cap.lines.size() == 1);
    CHECK(cap.lines[0].find("hunter2") == std::string::npos);
    CHECK(cap.lines[0].find("\"token\":\"***\"") != std::string::npos);
}

TEST_CASE("lines below the level are dropped") {
    Capture cap;
    log::set_level(log::Level::warn);
    log::Logger lg{"x"};
    lg.info("dropped");
    lg.debug("dropped");
    lg.warn("kept");
    REQUIRE(cap.lines.size() == 1);
    CHECK(cap.lines[0].find("kept") != std::string::npos);
}

TEST_CASE("level names parse and unknown names are refused") {
    log::Level l{};
    CHECK(log::parse_level("debug", l));
    CHECK(l == log::Level::debug);
    CHECK(log::parse_level("warning", l));
    CHECK(l == log::Level::warn);
    CHECK_FALSE(log::parse_level("verbose", l));
}

TEST_CASE("a throttle lets one line through per interval and counts what it held back") {
    omnibus::log::Throttle t(std::chrono::seconds(1));
    std::uint64_t n = 0;
    REQUIRE(t.allow(n));
    CHECK(n == 1);
    // Four threads hit it at once within the interval: none gets through, every hit is counted.
    std::vector<std::thread> threads;
    std::atomic<int> through{0};
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            for (int k = 0; k < 2500; ++k) {
                std::uint64_t c = 0;
                if (t.allow(c)) through.fetch_add(1);
            }
        });
    for (auto& th : threads) th.join();
    CHECK(through.load() == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1050));
    REQUIRE(t.allow(n));
    CHECK(n == 10001);  // the 10,000 held back and this one
    CHECK_FALSE(t.allow(n));
}
