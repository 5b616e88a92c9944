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
        out.error = "no answer in time";
        return out;
    }
    http::ClientResponse& resp = *wait->response;
    if (resp.status == 0) {
        out.error = resp.timed_out ? "timed out" : resp.error;
        return out;
    }
    out.status = resp.status;
    out.body = std::move(resp.body);
    return out;
}

}  // namespace omnibus::daemon
