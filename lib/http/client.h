// Client: the one outbound HTTP client (libcurl multi), asynchronous, one completion callback per request.
//
// Threads and ownership:
//   - send(), stop() and in_flight() may be called from any thread, concurrently.
//   - One thread per Client (started by the constructor, named "http-<name>") owns the curl
//     handles and everything a transfer touches: it runs curl_multi_poll, starts queued
//     requests, and runs every `done` callback. Callbacks therefore never run concurrently
//     with each other. They must be quick (they hold up every other transfer of this Client).
//     Calling send() or stop() from one is fine; destroying the Client from one is not.
//   - send() hands a request over through a mutex-guarded queue and wakes the thread with
//     curl_multi_wakeup; it never blocks on the network, on DNS or on a connection limit.
//
// Guarantees:
//   - `done` runs exactly once per send(): on the client thread, with an HTTP answer (any
//     status, 3xx included: redirects are not followed) or with a transport error (connect,
//     TLS, timeout, body over max_response_body, "client stopped").
//   - The request's timeout covers everything from send() to the last byte: waiting for a
//     free connection, DNS, connect, TLS, sending, the server's think time and the body.
//   - stop() fails what has not finished with "client stopped", waits until every such
//     callback has run, and returns; it does not wait for servers. A send() after stop()
//     runs `done` inline, on the calling thread, before send() returns.
//   - Connections are kept alive and reused (per host: max_connections_per_host; HTTP/2 is
//     negotiated over TLS via ALPN and multiplexes requests on one connection).
//   - Only http:// and https:// URLs are accepted; TLS peers are verified (system CAs).
//   - Nothing here logs URLs, header values or bodies: Authorization carries bearer tokens
//     and some APIs (Telegram) put the token in the URL path. Transport error texts come from
//     curl and may name the host and port, never the path or query.
//
// Metrics (labels: client=<name>):
//   omnibus_http_client_requests_total{outcome}   1xx..5xx, other, timeout, too_large, error, stopped
//   omnibus_http_client_request_duration_seconds  send() → done, every request except stopped ones
//   omnibus_http_client_in_flight                 sent, callback not yet returned
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omnibus::metrics {
class Registry;
}

namespace omnibus::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ClientRequest {
    std::string method = "POST";  // any token; GET/HEAD/POST/PUT/PATCH/DELETE in practice
    std::string url;              // http:// or https:// only
    // Sent in order, as given. Names must be tokens, values must not contain CR, LF or NUL
    // (else the request fails at once with an error, nothing is sent). A User-Agent given here
    // replaces the client's own. Host, Content-Length and Accept: */* are added; nothing else:
    // no Expect (unless given here), no Content-Type (unless given here), no Accept-Encoding.
    HeaderList headers;
    std::string body;  // sent as is with Content-Length when non-empty (or the method is POST)
    std::chrono::milliseconds timeout{10000};  // total, from send(); must be > 0
};

struct ClientResponse {
    int status = 0;      // the final HTTP status; 0 when no complete HTTP answer came (see error)
    HeaderList headers;  // the final response's header fields, names lower-cased, in order
    std::string body;
    std::string error;       // empty when an HTTP answer came; otherwise why not (status 0)
    bool timed_out = false;  // the request's timeout (or the connect timeout) expired
    std::chrono::nanoseconds elapsed{0};  // send() → done

    // The first header with this name (ASCII case-insensitive), e.g. header("retry-after").
    std::optional<std::string_view> header(std::string_view name) const;
};

// "omnibus/<project version>".
std::string default_user_agent();

struct ClientOptions {
    std::string user_agent = default_user_agent();
    std::size_t max_response_body = 1 << 20;         // larger bodies fail the request ("too_large")
    std::size_t max_response_headers = 64 * 1024;    // bytes of header lines, all 1xx blocks included
    long max_connections_per_host = 16;              // 0: no limit
    long max_total_connections = 64;                 // 0: no limit; also the idle connection cache
    std::chrono::milliseconds connect_timeout{5000};  // TCP + TLS handshake, within the request timeout
};

class Client {
public:
    // Starts the client thread. Throws std::invalid_argument on bad options or name (a token of
    // at most 63 characters: it is a metric label). Metrics go to `metrics`, which must outlive
    // the Client.
    Client(ClientOptions options, metrics::Registry& metrics, std::string name);
    ~Client();  // stop()
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Queues `request` and returns at once; `done` runs exactly once (see the guarantees above).
    void send(ClientRequest request, std::function<void(ClientResponse)> done);

    // Idempotent. From the client thread itself (inside a callback) it only marks the client
    // stopped: the remaining callbacks run as soon as that callback returns.
    void stop();

    // Requests sent whose callback has not returned yet.
    std::size_t in_flight() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace omnibus::http
