// The admin API server (see admin_server.h). The only translation unit that
// includes cpp-httplib's server.
#include "daemon/admin_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "daemon/admin_forwarder.h"
#include "log/log.h"
#include "metrics/metrics.h"

namespace omnibus::daemon {
namespace {

constexpr log::Logger lg{"admin"};

void sha256(const std::string& in, unsigned char out[SHA256_DIGEST_LENGTH]) {
    SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), out);
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    log::json_escape(s, out);
    out += '"';
    return out;
}

void reply(httplib::Response& res, int status, const std::string& body, const char* type = "application/json") {
    res.status = status;
    res.set_content(body, type);
}

}  // namespace

bool is_loopback_host(const std::string& host) {
    if (host == "localhost") return true;
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host.c_str(), buf) == 1) return buf[0] == 127;
    std::string h = host;
    if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
    if (inet_pton(AF_INET6, h.c_str(), buf) == 1) {
        static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        return std::equal(buf, buf + 16, loop6);
    }
    return false;
}

std::string AdminRequest::query_param(const std::string& name, const std::string& fallback) const {
    for (const auto& [k, v] : query)
        if (k == name) return v;
    return fallback;
}

AdminServer::AdminServer(AdminSettings settings, metrics::Registry& registry,
                         std::function<std::vector<ReadinessCheck>()> readiness,
                         std::function<std::string()> status_json)
    : settings_(std::move(settings)),
      registry_(registry),
      readiness_(std::move(readiness)),
      status_json_(std::move(status_json)),
      server_(std::make_unique<httplib::Server>()) {
    // A configured token is enforced on every address; off loopback one is mandatory.
    token_ = settings_.token;
    if (token_.empty() && !is_loopback_host(settings_.host))
        throw std::runtime_error("admin.listen " + settings_.host +
                                 " is not a loopback address: admin.token is required");

    auto& srv = *server_;
    srv.new_task_queue = [] { return new httplib::ThreadPool(2); };
    srv.set_tcp_nodelay(true);
    // cpp-httplib sets SO_REUSEPORT by default, which would let a second daemon
    // bind the same port and silently share it; a clash must be an error.
    srv.set_socket_options([](int sock) {
        int yes = 1, no = 0;
        setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
        setsockopt(sock, SOL_SOCKET, SO_REUSEPORT, &no, sizeof no);
    });
    srv.set_read_timeout(std::chrono::seconds(5));
    srv.set_write_timeout(std::chrono::seconds(5));
    srv.set_payload_max_length(1 << 20);
    srv.set_keep_alive_max_count(100);

    srv.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
        if (authorized(req.get_header_value("Authorization")))
            return httplib::Server::HandlerResponse::Unhandled;
        res.set_header("WWW-Authenticate", "Bearer");
        reply(res, 401, "{\"error\":\"unauthorized\"}");
        return httplib::Server::HandlerResponse::Handled;
    });
    srv.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
            if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        lg.error("handler failed", {{"path", req.path}, {"error", what}});
        reply(res, 500, "{\"error\":\"internal error\"}");
    });
    srv.set_error_handler([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return;
        if (res.status == 404) reply(res, 404, "{\"error\":\"not found\"}");
        else if (res.status == 405) reply(res, 405, "{\"error\":\"method not allowed\"}");
        else if (res.status == 413) reply(res, 413, "{\"error\":\"body too large\"}");
        else if (res.status == 400) reply(res, 400, "{\"error\":\"bad request\"}");
    });

    srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { reply(res, 200, "ok\n", "text/plain"); });
    srv.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
        auto checks = readiness_();
        bool ready = true;
        std::string body = "{\"checks\":[";
        for (size_t i = 0; i < checks.size(); ++i) {
            ready = ready && checks[i].ok;
            if (i) body += ',';
            body += "{\"name\":" + json_string(checks[i].name) + ",\"ok\":" + (checks[i].ok ? "true" : "false");
            if (!checks[i].detail.empty()) body += ",\"detail\":" + json_string(checks[i].detail);
            body += '}';
        }
        body = std::string("{\"ready\":") + (ready ? "true" : "false") + "," + body.substr(1) + "]}\n";
        reply(res, ready ? 200 : 503, body);
    });
    srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
        reply(res, 200, registry_.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    srv.Get("/v1/status", [this](const httplib::Request&, httplib::Response& res) { reply(res, 200, status_json_()); });
}

AdminServer::~AdminServer() { stop(); }

void AdminServer::route(const std::string& method, const std::string& pattern, AdminHandler handler) {
    auto h = [handler = std::move(handler), method](const httplib::Request& req, httplib::Response& res) {
        AdminRequest r;
        r.method = method;
        r.path = req.path;
        for (const auto& m : req.matches) r.matches.emplace_back(m.str());
        for (const auto& [k, v] : req.params) r.query.emplace_back(k, v);
        r.body = req.body;
        r.target = req.target;
        r.authorization = req.get_header_value("Authorization");
        r.forwarded = req.has_header(kForwardedHeader);
        AdminResponse out = handler(r);
        reply(res, out.status, out.body, out.content_type.c_str());
    };
    if (method == "GET") server_->Get(pattern, h);
    else if (method == "POST") server_->Post(pattern, h);
    else if (method == "PUT") server_->Put(pattern, h);
    else if (method == "DELETE") server_->Delete(pattern, h);
    else if (method == "PATCH") server_->Patch(pattern, h);
    else throw std::invalid_argument("unsupported method " + method);
}

void AdminServer::start() {
    std::string host = settings_.host;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (settings_.port == 0) {
        int p = server_->bind_to_any_port(host);
        if (p <= 0) throw std::runtime_error("admin: cannot bind " + settings_.host + ": address unusable");
        bound_port_ = static_cast<uint16_t>(p);
    } else {
        if (!server_->bind_to_port(host, settings_.port))
            throw std::runtime_error("admin: cannot bind " + settings_.host + ":" + std::to_string(settings_.port) +
                                     " (in use or not a local address)");
        bound_port_ = settings_.port;
    }
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // cpp-httplib's stop() does nothing until the listen loop runs, so a stop()
    // right after start() would leave the thread listening forever: wait for it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server_->is_running() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    lg.info("listening", {{"host", settings_.host}, {"port", bound_port_}, {"auth", !settings_.token.empty()}});
}

void AdminServer::stop() {
    if (thread_.joinable()) {
        server_->stop();
        thread_.join();
    }
}

void AdminServer::set_token(Secret token) {
    // Off loopback a token must stay set (the config check refuses to drop it).
    if (token.empty() && !is_loopback_host(settings_.host)) return;
    std::lock_guard lock(token_mu_);
    token_ = std::move(token);
}

bool AdminServer::authorized(const std::string& header) const {
    static const std::string prefix = "Bearer ";
    unsigned char want[SHA256_DIGEST_LENGTH];
    {
        std::lock_guard lock(token_mu_);
        if (token_.empty()) return true;  // no token: loopback only (checked at construction)
        sha256(token_.reveal(), want);
    }
    if (header.size() <= prefix.size() || header.compare(0, prefix.size(), prefix) != 0) return false;
    unsigned char given[SHA256_DIGEST_LENGTH];
    sha256(header.substr(prefix.size()), given);
    // Compare digests in constant time: neither the length nor a prefix of the token leaks.
    return CRYPTO_memcmp(given, want, SHA256_DIGEST_LENGTH) == 0;
}

}  // namespace omnibus::daemon
