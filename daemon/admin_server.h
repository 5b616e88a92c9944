// The admin API: health, readiness, Prometheus metrics, status, and the routes
// later components add (customers, identities). Low volume, request/response,
// served by cpp-httplib on its own small thread pool.
//
// Threads: handlers run on the server's pool threads, concurrently. Everything
// a handler reads must be thread-safe; the readiness and status callbacks are
// called from those threads. The token can be replaced at any time (SIGHUP).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/secret.h"

namespace omnibus::metrics {
class Registry;
}
namespace httplib {
class Server;
}

namespace omnibus::daemon {

struct AdminSettings {
    std::string host = "127.0.0.1";
    uint16_t port = 9090;  // 0: any free port (tests)
    Secret token;          // when set, every request must carry it; mandatory off loopback
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

struct ReadinessCheck {
    std::string name;
    bool ok = false;
    std::string detail;
};

struct AdminRequest {
    std::string method;
    std::string path;
    std::vector<std::string> matches;  // regex capture groups of the route, [0] is the whole path
    std::vector<std::pair<std::string, std::string>> query;
    std::string body;
    std::string target;         // the request target as it came: path and query, not decoded
    std::string authorization;  // the Authorization header ("" none): only to pass it on when forwarding
    bool forwarded = false;     // another instance forwarded it (X-Omnibus-Forwarded, admin_forwarder.h)
    std::string query_param(const std::string& name, const std::string& fallback = {}) const;
};

struct AdminResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

class AdminServer {
public:
    AdminServer(AdminSettings settings, metrics::Registry& registry,
                std::function<std::vector<ReadinessCheck>()> readiness, std::function<std::string()> status_json);
    ~AdminServer();
    AdminServer(const AdminServer&) = delete;
    AdminServer& operator=(const AdminServer&) = delete;

    // Adds a route before start(). `pattern` is an ECMAScript regex over the path.
    void route(const std::string& method, const std::string& pattern, AdminHandler handler);

    // Binds and starts serving on a background thread. Throws std::runtime_error
    // with a clear message when the address cannot be bound.
    void start();
    // Stops accepting and waits for the serving thread. Idempotent.
    void stop();

    uint16_t port() const { return bound_port_; }
    void set_token(Secret token);

private:
    bool authorized(const std::string& authorization_header) const;

    AdminSettings settings_;
    metrics::Registry& registry_;
    std::function<std::vector<ReadinessCheck>()> readiness_;
    std::function<std::string()> status_json_;
    std::unique_ptr<httplib::Server> server_;
    std::thread thread_;
    uint16_t bound_port_ = 0;
    mutable std::mutex token_mu_;
    Secret token_;  // guarded by token_mu_
};

}  // namespace omnibus::daemon
