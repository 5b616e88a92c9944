// WebSocket endpoints on the public edge (RFC 6455), for the connectors whose clients keep a
// connection open: web chat and the mobile apps. A route claims a path prefix ("/chat/");
// an upgrade request under it is offered to the route's accept function, which looks at the
// request (path, query, headers, client address) and either takes the connection, giving the
// handlers that receive its messages, or refuses it (403). No Boost here, as in request.h.
//
// What the server does for every WebSocket connection:
//   - the opening handshake (RFC 6455 section 4.2; version 13 only), also over TLS;
//   - text messages only: a binary message closes the connection with 1003, a text message
//     that is not UTF-8 with 1007, one larger than max_message_bytes with 1009;
//   - a connection that sends nothing for idle_timeout is pinged, and closed when it still
//     sends nothing (not even the pong) by the end of the next idle_timeout;
//   - outbound messages queue per connection; a client that does not read them and lets
//     more than max_queued_messages pile up is closed with 1008;
//   - stop() closes every WebSocket connection with 1001 (going away);
//   - connections count against max_connections and max_connections_per_ip like any other.
//
// Threads: accept and the handlers run on the connection's worker thread and must not block.
// A WebSocket (the connection's handle) may be used from any thread, also after the
// connection or the server is gone (then it does nothing).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edge/request.h"

namespace omnibus::edge {

// Close codes (RFC 6455 section 7.4.1) the server uses.
namespace close_code {
inline constexpr uint16_t normal = 1000;
inline constexpr uint16_t going_away = 1001;
inline constexpr uint16_t protocol_error = 1002;
inline constexpr uint16_t unsupported_data = 1003;
inline constexpr uint16_t no_status = 1005;  // reported when the close frame carried no code
inline constexpr uint16_t abnormal = 1006;   // reported when the connection ended without a close frame
inline constexpr uint16_t invalid_payload = 1007;
inline constexpr uint16_t policy_violation = 1008;
inline constexpr uint16_t too_big = 1009;
inline constexpr uint16_t internal_error = 1011;
}  // namespace close_code

// One open WebSocket connection, as its handlers see it.
class WebSocket {
public:
    virtual ~WebSocket() = default;
    // Queues a text message (must be valid UTF-8; it is not checked again here). False when
    // the connection is closing or gone; a send beyond max_queued_messages closes it (1008).
    virtual bool send(std::string text) = 0;
    // Starts the closing handshake with this code and reason (at most 123 bytes, cut).
    // Idempotent; the first call counts.
    virtual void close(uint16_t code = close_code::normal, std::string reason = {}) = 0;
    // A number unique among this server's connections, for logs and maps.
    virtual uint64_t id() const = 0;
};

struct WebSocketHandlers {
    // A complete text message from the client, in order.
    std::function<void(std::string text)> on_message;
    // Once, when the connection ended for any reason: the code the client's close frame
    // carried, or the server's own code when it closed the connection, or abnormal (1006)
    // when the connection was lost without a close frame.
    std::function<void(uint16_t code)> on_close;
};

// The upgrade request (body empty) and the connection that opens if the function returns
// handlers; nullopt refuses it with 403. It may keep `socket` and send right away: those
// messages go out after the handshake. An exception counts as a refusal (logged).
using WebSocketAccept = std::function<std::optional<WebSocketHandlers>(const Request& upgrade,
                                                                         std::shared_ptr<WebSocket> socket)>;

struct WebSocketRoute {
    // The path prefix the route serves: "/" + [a-z0-9_-]+ + "/" ("/chat/", "/app/"). An
    // upgrade to any path below it is offered to accept; a request under it that is not a
    // WebSocket upgrade gets 426 (a GET) or 405.
    std::string prefix;
    WebSocketAccept accept;
    std::size_t max_message_bytes = 64 * 1024;
    std::size_t max_queued_messages = 1024;
    std::chrono::milliseconds idle_timeout{60'000};
};

}  // namespace omnibus::edge
