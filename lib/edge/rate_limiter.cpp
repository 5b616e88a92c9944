// Requests-per-second limit of one channel (see rate_limiter.h).
#include "edge/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace omnibus::edge {

RateLimiter::RateLimiter(double per_second, double burst) : tat_(0) {
    if (!(per_second > 0) || !std::isfinite(per_second))
        throw std::invalid_argument("rate limit must be > 0 per second");
    if (!(burst >= 1) || !std::isfinite(burst)) throw std::invalid_argument("rate limit burst must be >= 1");
    interval_ns_ = std::max<int64_t>(1, static_cast<int64_t>(std::llround(1e9 / per_second)));
    tolerance_ns_ = static_cast<int64_t>(std::llround(static_cast<double>(interval_ns_) * (burst - 1)));
}

RateLimiter::Decision RateLimiter::try_acquire(Clock::time_point now_tp) {
    const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(now_tp.time_since_epoch()).count();
    int64_t tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
        const int64_t base = std::max(tat, now);
        if (base - now > tolerance_ns_) return {false, std::chrono::nanoseconds(base - now - tolerance_ns_)};
        if (tat_.compare_exchange_weak(tat, base + interval_ns_, std::memory_order_relaxed)) return {true, {}};
    }
}

long RateLimiter::retry_after_seconds(std::chrono::nanoseconds wait) {
    const auto ns = wait.count();
    const long s = static_cast<long>((ns + 999'999'999) / 1'000'000'000);
    return std::max(1L, s);
}

}  // namespace omnibus::edge
