// Open connections per client address, so one address cannot take every slot.
//
// Threads: any thread (a mutex, taken once when a connection opens and once
// when it closes, never per request).
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace omnibus::edge {

class ConnectionLimiter {
public:
    // 0 means no limit per address.
    explicit ConnectionLimiter(size_t max_per_address) : max_(max_per_address) {}

    // Counts one more connection from `address` unless that would exceed the limit.
    bool try_acquire(const std::string& address);
    void release(const std::string& address);

    size_t count(const std::string& address) const;
    size_t addresses() const;  // how many addresses have open connections

private:
    size_t max_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, size_t> open_;  // guarded by mu_; no zero entries
};

}  // namespace omnibus::edge
