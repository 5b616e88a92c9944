// X-Hub-Signature-256 of a webhook body as Meta computes it ("sha256=" + hex HMAC-SHA256 with
// the app secret), written here apart from the connector's own code so tests check it
// independently.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <string_view>

namespace omnibus::test {

inline std::string meta_signature(std::string_view secret, std::string_view body) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(body.data()),
         body.size(), md, &len);
    static const char* hex = "0123456789abcdef";
    std::string out = "sha256=";
    for (unsigned int i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

}  // namespace omnibus::test
