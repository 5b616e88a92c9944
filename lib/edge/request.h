// What a channel handler sees of one public HTTP request, what it answers, and
// the Responder it answers through, now or later, from any thread.
//
// No Boost here: connectors include this header (and edge_server.h) and stay
// cheap to compile; the server itself lives in edge_server.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omnibus::edge {

struct Header {
    std::string name;
    std::string value;
};

// One request, owned by the handler once it is called (move what you keep).
struct Request {
    std::string method;                                      // as sent: "GET", "POST"
    std::string target;                                      // raw request-target: "/webhooks/wa?hub.mode=subscribe"
    std::string path;                                        // percent-decoded path: "/webhooks/wa"
    std::string channel;                                     // the channel name of the route
    std::vector<std::pair<std::string, std::string>> query;  // decoded ('+' is a space), in order
    std::vector<Header> headers;                             // as received, in order
    std::string body;            // the body bytes exactly as received (chunked framing removed)
    std::string client_address;  // "203.0.113.7", "2001:db8::1"
    uint16_t client_port = 0;
    bool tls = false;
    unsigned http_version = 11;  // 10 or 11

    // First value of a query parameter, by exact (decoded) name.
    std::optional<std::string_view> query_param(std::string_view name) const;
    // First value of a header, by case-insensitive name.
    std::optional<std::string_view> header(std::string_view name) const;
};

// The answer. The server adds Date, Content-Length and Connection itself
// (they are ignored here), and drops the body of a 204 or 304.
struct Response {
    int status = 200;  // 200..599
    std::string body;
    std::string content_type = "application/json";
    std::vector<Header> headers;  // extra headers; names must be tokens, values without CR/LF

    static Response json(int status, std::string body);
    static Response text(int status, std::string body);  // text/plain; charset=utf-8
    // {"error":"<message>"} with the message JSON-escaped.
    static Response error(int status, std::string_view message);
};

namespace detail {
// One request waiting for its answer; the server's side of a Responder.
class Exchange {
public:
    virtual ~Exchange() = default;
    // True for the first caller only: whoever claims the exchange answers it.
    bool claim() { return !claimed_.exchange(true, std::memory_order_acq_rel); }
    bool claimed() const { return claimed_.load(std::memory_order_acquire); }
    // Called once, by the claimer, on any thread.
    virtual void deliver(Response&& response) = 0;

private:
    std::atomic<bool> claimed_{false};
};
}  // namespace detail

// Answers one request. Cheap to copy: copies share the request, so a copy can
// go into a std::function (a Kafka delivery callback) while the handler returns.
//
// Threads: respond() may be called from any thread, at any time, even after the
// server stopped. Only the first call of all the copies counts; later calls,
// and calls after the server already answered (the request deadline passed, the
// client went away, the server stopped), are ignored. When the last copy is
// destroyed without an answer the client gets a 500: a request never hangs.
class Responder {
public:
    Responder() = default;  // answers nothing
    explicit Responder(std::shared_ptr<detail::Exchange> exchange) : exchange_(std::move(exchange)) {}

    // True when this answer is the one taken; false when another copy answered
    // first or the server already did (deadline, stop, connection gone). An
    // answer can still be lost after true if the client disconnects meanwhile.
    bool respond(Response response) const;
    bool respond(int status, std::string json_body) const {
        return respond(Response::json(status, std::move(json_body)));
    }

    // Whether the request has been answered (by a copy, or by the server).
    bool answered() const { return exchange_ && exchange_->claimed(); }
    explicit operator bool() const { return static_cast<bool>(exchange_); }

private:
    std::shared_ptr<detail::Exchange> exchange_;
};

}  // namespace omnibus::edge
