// ns per inbound message to choose its identity set (WhatsApp sender with a phone; web chat
// visitor with shop id, address and national number), with the phone memo warm and cold.
// A figure to watch against the pipeline's 100,000 messages/s per core (make bench), not a test.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pipeline/identity/identity_set.h"

using namespace omnibus;
using namespace omnibus::pipeline::identity;

namespace {

envelope::Envelope whatsapp(int i) {
    envelope::Envelope env;
    env.channel = {"whatsapp", "whatsapp-eu"};
    const std::string digits = std::to_string(4915123400000LL + i);
    env.sender.id = "whatsapp:" + digits;
    env.sender.identities = {"phone:+" + digits};
    env.sender.verified_claims = envelope::VerifiedClaims{std::nullopt, std::nullopt, "+" + digits};
    return env;
}

envelope::Envelope webchat(int i) {
    envelope::Envelope env;
    env.channel = {"webchat", "webchat-de"};
    env.sender.id = "webchat:v-" + std::to_string(i);
    env.sender.verified_claims = envelope::VerifiedClaims{"C-" + std::to_string(i),
                                                          "Ana.Silva" + std::to_string(i) + "@Example.com",
                                                          "0151 " + std::to_string(23400000 + i)};
    return env;
}

double ns_per_message(const IdentitySetBuilder& b, const std::vector<envelope::Envelope>& envs, int rounds) {
    std::size_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r)
        for (const auto& env : envs) {
            auto set = b.identities_of(env);
            if (!set) std::abort();
            n += set->identities.size();
        }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    return ns / (static_cast<double>(envs.size()) * rounds) + 0 * static_cast<double>(n);
}

}  // namespace

int main() {
    pipeline::IdentitySettings s;
    s.channel_regions = {{"webchat-de", "DE"}};
    // 100 customers fit the phone memo; 2000 conflict in it now and then (a miss costs a
    // libphonenumber parse, 15-35 µs).
    for (const int customers : {100, 2000}) {
        const IdentitySetBuilder b(s);
        std::vector<envelope::Envelope> wa, wc;
        for (int i = 0; i < customers; ++i) {
            wa.push_back(whatsapp(i));
            wc.push_back(webchat(i));
        }
        const double wa_cold = ns_per_message(b, wa, 1);
        const double wc_cold = ns_per_message(b, wc, 1);
        const double wa_warm = ns_per_message(b, wa, 200000 / customers);
        const double wc_warm = ns_per_message(b, wc, 200000 / customers);
        std::printf(
            "identity set per message, %d customers: whatsapp sender + phone %.0f ns (first message %.0f ns); "
            "web chat shop + email + national phone %.0f ns (first message %.0f ns)\n",
            customers, wa_warm, wa_cold, wc_warm, wc_cold);
    }
    return 0;
}
