// AdminForwarder: sends an admin request on to the instance that can answer it (the holder of
// a customer's history, found in the instance directory) and waits for the answer, bounded.
// Built on the one outbound HTTP client (lib/http): only http(s) URLs, TLS peers verified, a
// total timeout, a bounded response body, and nothing logged of headers, paths or bodies (the
// Authorization header carries the caller's bearer token; paths carry customer ids).
//
// Threads: forward() is called from admin pool threads, concurrently, and blocks the calling
// thread until the answer or the timeout; the client's own thread does the I/O. The client (and
// its thread) is made at the first forward: an instance alone, or one whose callers always
// reach the holder, never starts it. stop() from the main thread, before the admin server
// stops: waiting callers get "client stopped", later ones an error.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace omnibus::metrics {
class Registry;
}
namespace omnibus::http {
class Client;
}

namespace omnibus::daemon {

// Marks a forwarded admin request: the instance it reaches answers from what it holds and
// never forwards it again, so instances whose directories disagree (during a rebalance)
// cannot bounce a request between them.
inline constexpr const char* kForwardedHeader = "X-Omnibus-Forwarded";

struct ForwardRequest {
    std::string base_url;       // http(s)://host:port, from the instance directory only
    std::string target;         // path and query, starting with '/'
    std::string authorization;  // the caller's Authorization header, passed on as it came ("" none)
};

struct ForwardResponse {
    int status = 0;     // the holder's HTTP status; 0 when it did not answer (see error)
    std::string body;
    std::string error;  // why there is no answer: refused, timeout, too large, bad request
};

struct AdminForwarderOptions {
    std::chrono::milliseconds timeout{2000};       // total, per request
    std::size_t max_response_body = 8 << 20;        // a larger answer counts as none
    // After a holder did not answer within `timeout`, requests for it fail at once for this
    // long instead of each holding an admin thread for `timeout`: a dead holder is named in
    // the directory until the partitions' next owner announces itself. (A refused connection
    // fails at once anyway and is not backed off.)
    std::chrono::milliseconds unreachable_backoff{5000};
};

class AdminForwarder {
public:
    AdminForwarder(AdminForwarderOptions options, metrics::Registry& metrics);
    ~AdminForwarder();
    AdminForwarder(const AdminForwarder&) = delete;
    AdminForwarder& operator=(const AdminForwarder&) = delete;

    // GET base_url + target with the forwarded mark; blocks until the answer (any status) or
    // a failure. Never throws for what the network or the holder does.
    ForwardResponse get(const ForwardRequest& request);

    void stop();

private:
    http::Client* client();  // made on first use; nullptr once stopped
    bool backing_off(const std::string& base_url);
    void unreachable(const std::string& base_url);

    AdminForwarderOptions options_;
    metrics::Registry& metrics_;
    std::mutex mu_;  // guards everything below
    std::unique_ptr<http::Client> client_;
    bool stopped_ = false;
    std::map<std::string, std::chrono::steady_clock::time_point> unreachable_until_;  // by base URL
};

}  // namespace omnibus::daemon
