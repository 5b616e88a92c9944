// X-Hub-Signature-256: HMAC-SHA256 of the raw body with the app secret,
// checked in constant time; anything malformed is refused.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <string>

#include "connectors/meta/webhook_signature.h"

using namespace omnibus::connectors::meta;

namespace {

std::string hex(const unsigned char* p, std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        s += kHex[p[i] >> 4];
        s += kHex[p[i] & 0x0F];
    }
    return s;
}

std::string openssl_hmac(const std::string& key, const std::string& body) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
         body.size(), out, &len);
    return "sha256=" + hex(out, len);
}

const std::string kBody =
    R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp"},"field":"messages"}]}]})";

}  // namespace

TEST_CASE("RFC 4231 test vectors (HMAC-SHA256)") {
    unsigned char out[32];
    WebhookSigner(std::string(20, '\x0b')).mac("Hi There", out);
    CHECK(hex(out, 32) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    WebhookSigner("Jefe").mac("what do ya want for nothing?", out);
    CHECK(hex(out, 32) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // Test case 6: a key longer than the block size is hashed first.
    WebhookSigner(std::string(131, '\xaa')).mac("Test Using Larger Than Block-Size Key - Hash Key First", out);
    CHECK(hex(out, 32) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("the signature is OpenSSL's HMAC for any key length and body") {
    for (const std::size_t key_len : {1u, 32u, 63u, 64u, 65u, 200u}) {
        const std::string key(key_len, 'k');
        const WebhookSigner signer(key);
        for (const std::string& body : {std::string(), std::string("x"), kBody, std::string(100000, '\0')}) {
            INFO(key_len << " " << body.size());
            CHECK(signer.sign(body) == openssl_hmac(key, body));
            CHECK(signer.verify(body, openssl_hmac(key, body)) == SignatureCheck::valid);
        }
    }
}

TEST_CASE("good, bad, missing and malformed signatures") {
    const WebhookSigner signer("6f1c0b3a9e2d4c5b8a7f6e5d4c3b2a19");
    const std::string good = signer.sign(kBody);
    REQUIRE(good.size() == 71);
    CHECK(signer.verify(kBody, good) == SignatureCheck::valid);

    std::string upper = good;
    for (std::size_t i = 7; i < upper.size(); ++i)
        if (upper[i] >= 'a' && upper[i] <= 'f') upper[i] = static_cast<char>(upper[i] - 'a' + 'A');
    CHECK(signer.verify(kBody, upper) == SignatureCheck::valid);

    // Bad: another body, another secret, one bit flipped.
    CHECK(signer.verify(kBody + " ", good) == SignatureCheck::mismatch);
    CHECK(WebhookSigner("another secret").verify(kBody, good) == SignatureCheck::mismatch);
    std::string flipped = good;
    flipped.back() = flipped.back() == '0' ? '1' : '0';
    CHECK(signer.verify(kBody, flipped) == SignatureCheck::mismatch);

    CHECK(signer.verify(kBody, "") == SignatureCheck::missing);

    CHECK(signer.verify(kBody, good.substr(7)) == SignatureCheck::malformed);                    // no prefix
    CHECK(signer.verify(kBody, "sha1=" + good.substr(7)) == SignatureCheck::malformed);          // other algorithm
    CHECK(signer.verify(kBody, "SHA256=" + good.substr(7)) == SignatureCheck::malformed);        // prefix is lower case
    CHECK(signer.verify(kBody, good.substr(0, 70)) == SignatureCheck::malformed);                // too short
    CHECK(signer.verify(kBody, good + "0") == SignatureCheck::malformed);                        // too long
    CHECK(signer.verify(kBody, " " + good) == SignatureCheck::malformed);                        // whitespace
    CHECK(signer.verify(kBody, "sha256=" + std::string(64, 'g')) == SignatureCheck::malformed);  // not hex
    std::string nul = good;
    nul[40] = '\0';
    CHECK(signer.verify(kBody, nul) == SignatureCheck::malformed);
    CHECK(signer.verify(kBody, "sha256=") == SignatureCheck::malformed);

    CHECK(to_string(SignatureCheck::valid) == "valid");
    CHECK(to_string(SignatureCheck::malformed) == "malformed");
    CHECK(kSignatureHeader == "X-Hub-Signature-256");
}

TEST_CASE("an empty app secret is a configuration error") { CHECK_THROWS_AS(WebhookSigner(""), std::invalid_argument); }

TEST_CASE("a signer can be moved") {
    WebhookSigner a("secret");
    const std::string sig = a.sign(kBody);
    WebhookSigner b(std::move(a));
    CHECK(b.verify(kBody, sig) == SignatureCheck::valid);
}
