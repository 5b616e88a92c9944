// The per-channel rate limit (token bucket as GCRA), driven by a hand clock.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "edge/rate_limiter.h"

using namespace omnibus::edge;
using namespace std::chrono_literals;

TEST_CASE("a burst passes at once, then one request per interval") {
    RateLimiter l(10, 3);  // one token every 100 ms, bursts of 3
    const auto t0 = RateLimiter::Clock::time_point{} + 1000s;
    CHECK(l.try_acquire(t0).admitted);
    CHECK(l.try_acquire(t0).admitted);
    CHECK(l.try_acquire(t0).admitted);
    auto d = l.try_acquire(t0);
    CHECK_FALSE(d.admitted);
    CHECK(d.retry_after == 100ms);
    CHECK_FALSE(l.try_acquire(t0 + 99ms).admitted);
    CHECK(l.try_acquire(t0 + 100ms).admitted);
    CHECK_FALSE(l.try_acquire(t0 + 150ms).admitted);
    // Refusals cost nothing: after a long pause the full burst is back, no more.
    const auto t1 = t0 + 10s;
    CHECK(l.try_acquire(t1).admitted);
    CHECK(l.try_acquire(t1).admitted);
    CHECK(l.try_acquire(t1).admitted);
    CHECK_FALSE(l.try_acquire(t1).admitted);
}

TEST_CASE("the long-run rate is the configured one") {
    RateLimiter l(50, 1);
    const auto t0 = RateLimiter::Clock::time_point{} + 1000s;
    int admitted = 0;
    for (int ms = 0; ms < 10'000; ++ms)  // a request every millisecond for 10 s
        admitted += l.try_acquire(t0 + std::chrono::milliseconds(ms)).admitted ? 1 : 0;
    CHECK(admitted == 500);
}

TEST_CASE("Retry-After is whole seconds, rounded up, at least 1") {
    CHECK(RateLimiter::retry_after_seconds(0ns) == 1);
    CHECK(RateLimiter::retry_after_seconds(1ms) == 1);
    CHECK(RateLimiter::retry_after_seconds(1s) == 1);
    CHECK(RateLimiter::retry_after_seconds(1001ms) == 2);
    CHECK(RateLimiter::retry_after_seconds(30s) == 30);
}

TEST_CASE("a rate limiter admits exactly its budget under concurrent callers") {
    RateLimiter l(1, 1000);  // a burst of 1000, then one per second
    const auto now = RateLimiter::Clock::time_point{} + 1000s;
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (l.try_acquire(now).admitted) ++admitted;
        });
    for (auto& t : threads) t.join();
    CHECK(admitted == 1000);
}

TEST_CASE("a rate limiter refuses nonsense settings") {
    CHECK_THROWS_AS(RateLimiter(0, 1), std::invalid_argument);
    CHECK_THROWS_AS(RateLimiter(-1, 1), std::invalid_argument);
    CHECK_THROWS_AS(RateLimiter(1, 0.5), std::invalid_argument);
}
