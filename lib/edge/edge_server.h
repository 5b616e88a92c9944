// The public HTTP edge: one asynchronous HTTP/1.1 server (Boost.Beast/Asio,
// optional TLS) for everything the outside world calls. Today it routes
// /webhooks/<channel> to the handler registered for that channel; web chat
// and the app (WebSocket upgrades under /chat/ and /app/) are to come.
//
// A handler gets the Request and a Responder and must not block: it answers
// at once or later from any thread (typically from a Kafka delivery callback,
// once the event is acknowledged). The server enforces the limits (body and
// header sizes, read timeouts, connections in total and per address, a rate
// per channel, a deadline per request) and answers errors with small JSON
// bodies that never carry internal details.
//
// Threads: `threads` workers, each running its own event loop; a connection
// lives on one worker for its whole life, and its handler calls run there.
// add_channel() before start(); start() and stop() from one controlling
// thread. port(), connections() may be called from any thread.
//
// The registry passed in must outlive the server.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "edge/request.h"
#include "edge/websocket.h"

namespace omnibus::metrics {
class Registry;
}

namespace omnibus::edge {

struct EdgeSettings {
    std::string host = "0.0.0.0";
    uint16_t port = 8080;  // 0: any free port (tests); port() tells which
    unsigned threads = 0;  // 0: one per core
    // TLS when both are set: PEM certificate chain and PEM private key.
    std::string cert_file;
    std::string key_file;
    int backlog = 4096;  // listen(2) backlog (the kernel caps it at net.core.somaxconn)

    size_t max_body_bytes = 4 * 1024 * 1024;  // larger → 413 (Meta sends webhooks of up to 3 MB)
    size_t max_header_bytes = 16 * 1024;  // request line + headers; larger → 431
    // Reading one request: from its first byte until the headers are complete,
    // then until the body is complete. Slower clients are disconnected.
    // (Every timeout holds to within a quarter of the shortest one, at most 250 ms.)
    std::chrono::milliseconds header_timeout{10'000};
    std::chrono::milliseconds body_timeout{30'000};
    // A kept-alive connection may wait this long for its next request.
    std::chrono::milliseconds idle_timeout{60'000};
    // A handler that has not answered by then: the server answers 503.
    std::chrono::milliseconds request_timeout{10'000};
    // Sending one response.
    std::chrono::milliseconds write_timeout{30'000};
    // stop(): how long in-flight requests may take to finish.
    std::chrono::milliseconds shutdown_timeout{5'000};

    size_t max_connections = 10'000;      // beyond: new connections are closed at once
    size_t max_connections_per_ip = 256;  // 0: no limit per address
};

// Requests per second admitted for one channel (token bucket); refused → 429
// with Retry-After. per_second == 0: no limit.
struct RateLimit {
    double per_second = 0;
    double burst = 0;  // 0: max(1, per_second), i.e. one second's worth
};

// Called on a worker thread for each admitted request of its channel. Must not
// block: answer through the Responder now or later, from any thread. An
// exception it throws is logged and answered 500.
using Handler = std::function<void(Request request, Responder responder)>;

struct ChannelRoute {
    ChannelRoute() = default;
    ChannelRoute(std::string channel_name, std::vector<std::string> allowed_methods, Handler channel_handler,
                 RateLimit limit = {})
        : channel(std::move(channel_name)),
          methods(std::move(allowed_methods)),
          handler(std::move(channel_handler)),
          rate_limit(limit) {}

    std::string channel;                       // [a-z0-9][a-z0-9_-]{0,62}, served at /webhooks/<channel>
    std::vector<std::string> methods{"POST"};  // others → 405 with Allow
    Handler handler;
    RateLimit rate_limit;
};

class EdgeServer {
public:
    // Throws std::invalid_argument for settings that cannot work (a zero
    // timeout, a certificate without a key, ...).
    EdgeServer(EdgeSettings settings, metrics::Registry& registry);
    ~EdgeServer();  // stop()
    EdgeServer(const EdgeServer&) = delete;
    EdgeServer& operator=(const EdgeServer&) = delete;

    // Before start(). Throws std::invalid_argument (bad or duplicate channel
    // name, no method, no handler) or std::logic_error (after start()).
    void add_channel(ChannelRoute route);

    // Before start(): serves WebSocket connections under route.prefix (websocket.h).
    // Throws std::invalid_argument (bad or duplicate prefix, no accept function, a zero
    // limit) or std::logic_error (after start()).
    void add_websocket(WebSocketRoute route);

    // Loads the TLS files, binds, listens and starts the workers. Throws
    // std::runtime_error with the address and the reason when it cannot
    // (port in use, unreadable certificate, ...). Once only.
    void start();

    // Stops accepting, closes idle connections, lets requests in flight finish
    // (their responses carry Connection: close) for up to shutdown_timeout,
    // then answers what is still pending with 503 and closes everything.
    // Idempotent; returns when every worker has stopped. Not from a handler.
    void stop();

    // Runs `fn` on a worker thread (the workers take turns), later, never inline: for
    // work that completes requests from another thread, such as serving Kafka's delivery
    // reports, so that the answers are written without another thread's hop. Any
    // thread. Returns false, and drops fn, before start() or once stop() has begun
    // stopping the workers. fn must be quick: connections wait while it runs.
    bool post(std::function<void()> fn);

    uint16_t port() const;       // the bound port, after start()
    bool tls() const;            // whether cert_file/key_file are in use
    size_t connections() const;  // open connections now
    const EdgeSettings& settings() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace omnibus::edge
