// A deliberately dumb HTTP/1.1 client over a raw loopback socket (optionally
// TLS through OpenSSL), for edge tests: it sends exactly the bytes it is
// given, so tests can pipeline, trickle, send garbage or over-long headers,
// and read responses one at a time. Also makes a self-signed certificate.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omnibus::test {

struct HttpResponse {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    std::string header(std::string_view name) const {
        for (const auto& [k, v] : headers) {
            if (k.size() != name.size()) continue;
            bool same = true;
            for (size_t i = 0; i < k.size() && same; ++i)
                same =
                    std::tolower(static_cast<unsigned char>(k[i])) == std::tolower(static_cast<unsigned char>(name[i]));
            if (same) return v;
        }
        return {};
    }
    bool closes() const { return header("Connection") == "close"; }
};

class RawClient {
public:
    using ms = std::chrono::milliseconds;

    explicit RawClient(uint16_t port, SSL_CTX* tls = nullptr) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) throw std::runtime_error("socket failed");
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("connect failed: " + std::string(std::strerror(errno)));
        if (tls) {
            ssl_ = SSL_new(tls);
            SSL_set_fd(ssl_, fd_);
            SSL_set_tlsext_host_name(ssl_, "localhost");
            if (SSL_connect(ssl_) != 1) throw std::runtime_error("TLS handshake failed");
        }
    }
    ~RawClient() { close(); }
    RawClient(const RawClient&) = delete;
    RawClient& operator=(const RawClient&) = delete;

    void close() {
        if (ssl_) {
            SSL_free(ssl_);
            ssl_ = nullptr;
        }
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    // False when the server has closed (EPIPE, reset).
    bool send(std::string_view bytes) {
        while (!bytes.empty()) {
            long n = ssl_ ? SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                          : ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                if (!ssl_ && n < 0 && errno == EINTR) continue;
                return false;
            }
            bytes.remove_prefix(static_cast<size_t>(n));
        }
        return true;
    }

    // One response: status line, headers, and a Content-Length body (no
    // Content-Length: the body runs to the close). nullopt when it did not
    // come in time or the connection closed first.
    std::optional<HttpResponse> read_response(ms timeout = ms(5000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill(deadline)) return std::nullopt;
        HttpResponse r;
        std::string_view head(buf_.data(), end);
        auto line_end = head.find("\r\n");
        std::string_view status_line = head.substr(0, line_end);
        if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return std::nullopt;
        r.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
        std::string_view rest = line_end == std::string_view::npos ? std::string_view{} : head.substr(line_end + 2);
        while (!rest.empty()) {
            auto e = rest.find("\r\n");
            std::string_view line = rest.substr(0, e);
            rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
            auto colon = line.find(':');
            if (colon == std::string_view::npos) continue;
            std::string_view v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
            r.headers.emplace_back(std::string(line.substr(0, colon)), std::string(v));
        }
        buf_.erase(0, end + 4);
        const std::string cl = r.header("Content-Length");
        if (!cl.empty()) {
            const size_t n = std::stoul(cl);
            while (buf_.size() < n)
                if (!fill(deadline)) return std::nullopt;
            r.body = buf_.substr(0, n);
            buf_.erase(0, n);
        } else if (r.status != 100 && r.status != 101 && r.status != 204 && r.status != 304) {
            while (fill(deadline)) {
            }
            r.body = std::move(buf_);
            buf_.clear();
        }
        return r;
    }

    // True when the server closes the connection (EOF or reset) within `timeout`.
    // Whatever arrives meanwhile is kept for read_response().
    bool wait_closed(ms timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (fill(deadline)) {
        }
        return closed_;
    }
    bool closed() const { return closed_; }
    const std::string& pending() const { return buf_; }

    // Exactly n bytes (after what read_response() left), or nullopt on close or timeout.
    std::optional<std::string> read_exact(size_t n, std::chrono::steady_clock::time_point deadline) {
        while (buf_.size() < n)
            if (!fill(deadline)) return std::nullopt;
        std::string out = buf_.substr(0, n);
        buf_.erase(0, n);
        return out;
    }

private:
    // Reads more bytes; false on close, error or deadline.
    bool fill(std::chrono::steady_clock::time_point deadline) {
        if (closed_) return false;
        for (;;) {
            if (!ssl_ || SSL_pending(ssl_) == 0) {
                auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now()).count();
                if (left <= 0) return false;
                pollfd p{fd_, POLLIN, 0};
                int pr = ::poll(&p, 1, static_cast<int>(left));
                if (pr < 0 && errno == EINTR) continue;
                if (pr <= 0) return false;
            }
            char tmp[16384];
            long n = ssl_ ? SSL_read(ssl_, tmp, sizeof tmp) : ::recv(fd_, tmp, sizeof tmp, 0);
            if (n > 0) {
                buf_.append(tmp, static_cast<size_t>(n));
                return true;
            }
            if (!ssl_ && n < 0 && errno == EINTR) continue;
            if (ssl_ && n < 0 && SSL_get_error(ssl_, static_cast<int>(n)) == SSL_ERROR_WANT_READ) continue;
            closed_ = true;  // EOF, reset, or TLS close
            return false;
        }
    }

    int fd_ = -1;
    SSL* ssl_ = nullptr;
    std::string buf_;
    bool closed_ = false;
};

// "POST <path> HTTP/1.1" with Host and Content-Length.
inline std::string post(std::string_view path, std::string_view body, std::string_view extra_headers = {}) {
    std::string r = "POST " + std::string(path) + " HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n";
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    r += extra_headers;
    r += "\r\n";
    r += body;
    return r;
}

inline std::string get(std::string_view target, std::string_view extra_headers = {}) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: test\r\n" + std::string(extra_headers) + "\r\n";
}

// A fresh private directory under /tmp, removed with its files at the end.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/omnibus-edge-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        for (const auto& f : files_) ::unlink(f.c_str());
        ::rmdir(path_.c_str());
    }
    std::string file(const std::string& name) {
        files_.push_back(path_ + "/" + name);
        return files_.back();
    }

private:
    std::string path_;
    std::vector<std::string> files_;
};

// Writes a fresh self-signed P-256 certificate for CN=localhost and its key (PEM).
inline void write_self_signed_cert(const std::string& cert_path, const std::string& key_path) {
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (!key) throw std::runtime_error("key generation failed");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, key, EVP_sha256()) == 0) throw std::runtime_error("signing failed");
    FILE* f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, x);
    std::fclose(f);
    f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
}

// A client context that accepts any certificate (the test made it).
struct ClientTls {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    ClientTls() { SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr); }
    ~ClientTls() { SSL_CTX_free(ctx); }
    ClientTls(const ClientTls&) = delete;
    ClientTls& operator=(const ClientTls&) = delete;
};

}  // namespace omnibus::test
