// Open connections per client address (see connection_limiter.h).
#include "edge/connection_limiter.h"

namespace omnibus::edge {

bool ConnectionLimiter::try_acquire(const std::string& address) {
    std::lock_guard lock(mu_);
    size_t& n = open_[address];
    if (max_ != 0 && n >= max_) return false;
    ++n;
    return true;
}

void ConnectionLimiter::release(const std::string& address) {
    std::lock_guard lock(mu_);
    auto it = open_.find(address);
    if (it == open_.end()) return;
    if (--it->second == 0) open_.erase(it);
}

size_t ConnectionLimiter::count(const std::string& address) const {
    std::lock_guard lock(mu_);
    auto it = open_.find(address);
    return it == open_.end() ? 0 : it->second;
}

size_t ConnectionLimiter::addresses() const {
    std::lock_guard lock(mu_);
    return open_.size();
}

}  // namespace omnibus::edge
