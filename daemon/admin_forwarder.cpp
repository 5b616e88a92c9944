// Forwarding admin requests to the instance that holds the answer (see admin_forwarder.h).
#include "daemon/admin_forwarder.h"

#include <condition_variable>
#include <mutex>
#include <optional>

#include "http/client.h"

namespace omnibus::daemon {
namespace {

// A target as an HTTP request line carries it: origin-form, printable ASCII, no spaces.
bool is_origin_target(const std::string& t) {
    if (t.empty() || t.front() != '/' || t.size() > 8192) return false;
    for (unsigned char c : t)
        if (c <= 0x20 || c >= 0x7F) return false;
    return true;
}

}  // namespace

AdminForwarder::AdminForwarder(AdminForwarderOptions options, metrics::Registry& metrics)
    : options_(options), metrics_(metrics) {}

AdminForwarder::~AdminForwarder() { stop(); }

http::Client* AdminForwarder::client() {
    std::lock_guard lock(mu_);
    if (stopped_) return nullptr;
    if (!client_) {
        http::ClientOptions co;
        co.max_response_body = options_.max_response_body;
        co.connect_timeout = options_.timeout;
        co.max_connections_per_host = 4;  // the admin pool's size bounds it anyway
        co.max_total_connections = 16;
        client_ = std::make_unique<http::Client>(co, metrics_, "admin-forward");
    }
    return client_.get();
}

bool AdminForwarder::backing_off(const std::string& base_url) {
    std::lock_guard lock(mu_);
    auto it = unreachable_until_.find(base_url);
    if (it == unreachable_until_.end()) return false;
    if (std::chrono::steady_clock::now() < it->second) return true;
    unreachable_until_.erase(it);
    return false;
}

void AdminForwarder::unreachable(const std::string& base_url) {
    if (options_.unreachable_backoff.count() <= 0) return;
    std::lock_guard lock(mu_);
    if (unreachable_until_.size() >= 1024) unreachable_until_.clear();  // URLs come from the directory: few
    unreachable_until_[base_url] = std::chrono::steady_clock::now() + options_.unreachable_backoff;
}

void AdminForwarder::stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    if (client_) client_->stop();
}

ForwardResponse AdminForwarder::get(const ForwardRequest& request) {
    ForwardResponse out;
    if (!is_origin_target(request.target)) {
        out.error = "request target cannot be forwarded";
        return out;
    }
    if (request.authorization.find_first_of("\r\n", 0) != std::string::npos) {
        out.error = "authorization header cannot be forwarded";
        return out;
    }
    if (backing_off(request.base_url)) {
        out.error = "did not answer a moment ago";
        return out;
    }
    http::ClientRequest r;
    r.method = "GET";
    r.url = request.base_url + request.target;
    r.timeout = options_.timeout;
    if (!request.authorization.empty()) r.headers.emplace_back("Authorization", request.authorization);
    r.headers.emplace_back(kForwardedHeader, "1");

    struct Wait {
        std::mutex mu;
        std::condition_variable cv;
        std::optional<http::ClientResponse> response;
    };
    http::Client* client = this->client();
    if (!client) {
        out.error = "client stopped";
        return out;
    }
    auto wait = std::make_shared<Wait>();  // the callback runs on the client thread
    client->send(std::move(r), [wait](http::ClientResponse resp) {
        {
            std::lock_guard lock(wait->mu);
            wait->response = std::move(resp);
        }
        wait->cv.notify_all();
    });
    std::unique_lock lock(wait->mu);
    // The client's timeout ends every request; the margin only covers handing the answer over.
    if (!wait->cv.wait_for(lock, options_.timeout + std::chrono::seconds(1), [&] { return wait->response.has_value(); })) {
        lock.unlock();
        unreachable(request.base_url);
        out.error = "no answer in time";
        return out;
    }
    http::ClientResponse& resp = *wait->response;
    if (resp.status == 0) {
        out.error = resp.timed_out ? "timed out" : resp.error;
        lock.unlock();
        // Only a timeout held this thread: a refused connection fails at once anyway.
        if (resp.timed_out) unreachable(request.base_url);
        return out;
    }
    out.status = resp.status;
    out.body = std::move(resp.body);
    return out;
}

}  // namespace omnibus::daemon
