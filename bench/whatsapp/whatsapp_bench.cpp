// ns per WhatsApp webhook through the pure path: signature check, parse into
// envelopes, encode for Kafka; and one uncached libphonenumber look-up.
// A figure to watch (make bench), not a test.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "connectors/meta/webhook_signature.h"
#include "connectors/whatsapp/whatsapp_codec.h"
#include "unit/connectors/whatsapp/whatsapp_test_support.h"

using namespace omnibus;
using namespace omnibus::connectors::whatsapp;
using namespace omnibus::connectors::whatsapp::testing;

int main() {
    const std::string body = compact(sample("text"));  // as Meta sends it
    const connectors::meta::WebhookSigner signer("6f1c0b3a9e2d4c5b8a7f6e5d4c3b2a19");
    const std::string sig = signer.sign(body);
    const WebhookCodec c(CodecOptions{"whatsapp-eu", ""});
    auto run = [&](int n, bool encode_too) {
        std::size_t bytes = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; ++i) {
            if (signer.verify(body, sig) != connectors::meta::SignatureCheck::valid) std::abort();
            auto ev = c.parse(body, kReceived);
            if (encode_too) bytes += envelope::encode(ev->messages[0], ev->messages[0].sender.id).value.size();
        }
        const auto t1 = std::chrono::steady_clock::now();
        return std::chrono::duration<double, std::nano>(t1 - t0).count() / n + 0 * static_cast<double>(bytes);
    };
    run(2000, true);  // warm up (and fill the phone memo)
    const int n = 50000;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) (void)(signer.verify(body, sig) == connectors::meta::SignatureCheck::valid);
    const double verify_ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
    const double parse_ns = run(n, false);
    const double total_ns = run(n, true);
    phone::PhoneNormalizer cold;
    const auto t2 = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) (void)cold.from_wa_id(std::to_string(4915123400000 + i));
    const double phone_ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t2).count() / 200;
    std::printf(
        "whatsapp %zu-byte text webhook: verify %.0f ns, verify+parse %.0f ns, verify+parse+encode %.0f ns; "
        "uncached libphonenumber look-up %.0f ns\n",
        body.size(), verify_ns, parse_ns, total_ns, phone_ns);
    return 0;
}
