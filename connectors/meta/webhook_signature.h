// Meta webhook signatures (WhatsApp Cloud API, Messenger, Instagram): the
// `X-Hub-Signature-256: sha256=<hex>` header is the HMAC-SHA256 of the raw
// request body keyed with the app secret.
//
// Thread-safety: a WebhookSigner is immutable after construction; verify() and
// sign() may be called from any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace omnibus::connectors::meta {

inline constexpr std::string_view kSignatureHeader = "X-Hub-Signature-256";

// Why a request was (not) accepted. Bounded: usable as a metric label.
enum class SignatureCheck : std::uint8_t {
    valid,
    missing,    // no header, or an empty one
    malformed,  // not "sha256=" followed by exactly 64 hex digits
    mismatch,   // well-formed, but not the HMAC of this body with this secret
};
std::string_view to_string(SignatureCheck check);

class WebhookSigner {
public:
    // Throws std::invalid_argument on an empty secret and std::runtime_error
    // when OpenSSL cannot provide SHA-256 (both at start-up, never on traffic).
    explicit WebhookSigner(std::string_view app_secret);
    ~WebhookSigner();
    WebhookSigner(WebhookSigner&&) noexcept;
    WebhookSigner& operator=(WebhookSigner&&) noexcept;

    // `header` is the header's value as received ("" when absent). Hex digits
    // may be upper or lower case; the digests are compared in constant time.
    SignatureCheck verify(std::string_view raw_body, std::string_view header) const;

    // "sha256=<64 lowercase hex digits>", what Meta sends (tests, fakes).
    std::string sign(std::string_view raw_body) const;

    // The raw 32-byte HMAC-SHA256.
    void mac(std::string_view raw_body, unsigned char out[32]) const;

private:
    struct Keyed;
    std::unique_ptr<Keyed> keyed_;
};

}  // namespace omnibus::connectors::meta
