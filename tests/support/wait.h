// wait_until: tests wait for a condition with a deadline instead of sleeping.
#pragma once

#include <chrono>
#include <thread>

namespace omnibus::test {

// Polls `cond` every `step` until it holds (true) or `timeout` passes (false).
template <class Cond>
bool wait_until(Cond&& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() >= deadline) return cond();
        std::this_thread::sleep_for(step);
    }
    return true;
}

}  // namespace omnibus::test
