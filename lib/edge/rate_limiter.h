// Requests-per-second limit of one channel: a token bucket in its
// virtual-scheduling form (GCRA), so the whole state is one atomic timestamp.
//
// Threads: try_acquire() may be called from any thread at once (lock-free).
// The clock is a parameter, so tests drive it by hand.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace omnibus::edge {

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    // `per_second` > 0 requests per second on average, bursts of up to
    // `burst` (>= 1) requests at once after an idle period.
    RateLimiter(double per_second, double burst);

    struct Decision {
        bool admitted = false;
        // When refused: how long until one request would be admitted.
        std::chrono::nanoseconds retry_after{0};
    };
    Decision try_acquire(Clock::time_point now);

    // Retry-After as whole seconds (rounded up, at least 1).
    static long retry_after_seconds(std::chrono::nanoseconds wait);

private:
    int64_t interval_ns_;       // one token every interval
    int64_t tolerance_ns_;      // (burst - 1) intervals: how far ahead of now the schedule may run
    std::atomic<int64_t> tat_;  // theoretical arrival time of the next request, ns since the clock's epoch
};

}  // namespace omnibus::edge
