// ns per inbound message to choose its identity set (WhatsApp sender with a phone; web chat
// visitor with shop id, address and national number), with the phone memo warm and cold; then
// ns to look up a returning customer in the identity store (both identities, as the resolve
// stage does), with the store's read cache and without it.
// Figures to watch against the pipeline's 100,000 messages/s per core (make bench), not a test.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>
#include <string>
#include <vector>

#include "pipeline/identity/identity_set.h"
#include "pipeline/identity/identity_store.h"

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

// ns per message to resolve both identities of `customers` returning WhatsApp customers.
double ns_per_lookup(const std::string& dir, std::size_t cache_entries, int customers) {
    std::filesystem::remove_all(dir);
    IdentityStore store(dir, cache_entries);
    std::vector<LogEntry> log;
    for (int i = 0; i < customers; ++i) {
        const std::string digits = std::to_string(4915123400000LL + i);
        log.push_back({i, Request{Op::observe, "r" + std::to_string(i), "c" + std::to_string(i),
                                  {"whatsapp:" + digits, "phone:+" + digits}, 1, "bench", {}}});
    }
    (void)store.apply(log, 1);
    std::size_t found = 0;
    const int rounds = 400000 / customers;
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r)
        for (const auto& e : log)
            for (const auto& ident : e.request->identities) found += store.resolve_identity(ident) ? 1 : 0;
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    if (found != static_cast<std::size_t>(rounds) * log.size() * 2) std::abort();
    return ns / (static_cast<double>(rounds) * customers);
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
    const std::string dir = "/tmp/omnibus-bench-identity-" + std::to_string(::getpid());
    const int customers = 2000;
    const double uncached = ns_per_lookup(dir, 0, customers);
    const double cached = ns_per_lookup(dir, IdentityStore::kCacheEntries, customers);
    std::printf("identity store, returning customer (whatsapp + phone identity), %d customers: %.0f ns with the read "
                "cache, %.0f ns from RocksDB (%.2f of it)\n",
                customers, cached, uncached, cached / uncached);
    std::filesystem::remove_all(dir);
    return 0;
}
