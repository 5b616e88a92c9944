// A WebSocket client written from RFC 6455 for edge tests, independent of the server's
// library: it sends the opening handshake and checks Sec-WebSocket-Accept, masks what it
// sends, and can send what a well-behaved client would not (binary, invalid UTF-8, frames
// over the limit). Blocking, over RawClient (so TLS works the same way).
#pragma once

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http_client.h"

namespace omnibus::test {

inline std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2).
inline std::string websocket_accept(std::string_view key) {
    const std::string in = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
    return base64(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

struct WsFrame {
    uint8_t opcode = 0;  // 1 text, 2 binary, 8 close, 9 ping, 10 pong
    std::string payload;
    // For a close frame: its code (1005 when it carried none).
    uint16_t close_code() const {
        if (payload.size() < 2) return 1005;
        return static_cast<uint16_t>((static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]));
    }
};

class WsClient {
public:
    using ms = std::chrono::milliseconds;

    // Connects and sends the opening handshake for `target`; handshake() tells the answer.
    WsClient(uint16_t port, std::string_view target, std::string_view extra_headers = {}, SSL_CTX* tls = nullptr)
        : http_(port, tls) {
        unsigned char nonce[16];
        RAND_bytes(nonce, sizeof nonce);
        key_ = base64(std::string_view(reinterpret_cast<const char*>(nonce), sizeof nonce));
        std::string req = "GET " + std::string(target) +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: " +
                          key_ + "\r\nSec-WebSocket-Version: 13\r\n" + std::string(extra_headers) + "\r\n";
        http_.send(req);
    }

    // The server's answer to the handshake: 101 with the right Sec-WebSocket-Accept is an open
    // connection; anything else is returned as it came (a 403, a 426, ...).
    HttpResponse handshake(ms timeout = ms(5000)) {
        auto r = http_.read_response(timeout);  // a 101 has no body: the frames follow
        if (!r) return HttpResponse{};
        open_ = r->status == 101 && r->header("Sec-WebSocket-Accept") == websocket_accept(key_) &&
                r->header("Upgrade").size() == 9;  // "websocket", in any case
        return *r;
    }
    bool open() const { return open_; }

    // One frame, masked as a client must (RFC 6455 section 5.3).
    bool send_frame(uint8_t opcode, std::string_view payload, bool fin = true) {
        std::string f;
        f += static_cast<char>((fin ? 0x80 : 0) | opcode);
        const size_t n = payload.size();
        if (n < 126) {
            f += static_cast<char>(0x80 | n);
        } else if (n < 65536) {
            f += static_cast<char>(0x80 | 126);
            f += static_cast<char>(n >> 8);
            f += static_cast<char>(n & 0xFF);
        } else {
            f += static_cast<char>(0x80 | 127);
            for (int i = 7; i >= 0; --i) f += static_cast<char>((static_cast<uint64_t>(n) >> (8 * i)) & 0xFF);
        }
        unsigned char mask[4];
        RAND_bytes(mask, sizeof mask);
        f.append(reinterpret_cast<const char*>(mask), 4);
        for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ static_cast<char>(mask[i % 4]));
        return http_.send(f);
    }
    bool send_text(std::string_view text) { return send_frame(1, text); }
    bool send_close(uint16_t code) {
        std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
        return send_frame(8, p);
    }

    // The next frame from the server, as it came (server frames are never masked).
    std::optional<WsFrame> read_frame(ms timeout = ms(5000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        auto head = http_.read_exact(2, deadline);
        if (!head) return std::nullopt;
        WsFrame f;
        f.opcode = static_cast<uint8_t>((*head)[0] & 0x0F);
        if ((*head)[1] & 0x80) return std::nullopt;  // a masked server frame: not WebSocket
        uint64_t n = static_cast<unsigned char>((*head)[1]) & 0x7F;
        if (n >= 126) {
            auto ext = http_.read_exact(n == 126 ? 2 : 8, deadline);
            if (!ext) return std::nullopt;
            n = 0;
            for (unsigned char c : *ext) n = (n << 8) | c;
        }
        auto payload = http_.read_exact(static_cast<size_t>(n), deadline);
        if (!payload) return std::nullopt;
        f.payload = std::move(*payload);
        fin_ = ((*head)[0] & 0x80) != 0;
        return f;
    }

    // The next whole message (continuations joined); pings are answered, pongs skipped.
    // A close frame is returned as it is.
    std::optional<WsFrame> read_message(ms timeout = ms(5000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::optional<WsFrame> msg;
        for (;;) {
            const auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            auto f = read_frame(left);
            if (!f) return std::nullopt;
            if (f->opcode == 9) {
                send_frame(10, f->payload);
                continue;
            }
            if (f->opcode == 10) continue;
            if (f->opcode == 8) return f;
            if (!msg) msg = std::move(f);
            else msg->payload += f->payload;  // a continuation
            if (fin_) return msg;
        }
    }

    // True when the server closed the connection within `timeout`; then this side closes too,
    // as a client does once the closing handshake is over.
    bool wait_closed(ms timeout) {
        const bool closed = http_.wait_closed(timeout);
        if (closed) http_.close();
        return closed;
    }
    RawClient& raw() { return http_; }

private:
    RawClient http_;
    std::string key_;
    bool open_ = false;
    bool fin_ = true;
};

}  // namespace omnibus::test
