// UUIDv7 generator: 48-bit ms clock, 12-bit counter (RFC 9562 method 1), 62 random bits.
#include "envelope/id.h"
#include "encoding/hex.h"

#include <pthread.h>
#include <sys/random.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace omnibus::envelope {
namespace {

// (unix ms << 12 | counter) of the last id handed out. When more than 4096 ids
// are taken in one millisecond the counter carries into the ms field, so the
// embedded time may run a few ms ahead under extreme load; order is kept.
std::atomic<std::uint64_t> g_last{0};

// Bumped in a fork child so that each thread reseeds its random state and the
// child never repeats its parent's random bits.
std::atomic<std::uint32_t> g_fork_generation{0};

void on_fork_child() { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

std::uint64_t seed64() {
    std::uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != static_cast<ssize_t>(sizeof s)) {
        std::random_device rd;
        s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    return s;
}

struct Rng {
    std::uint64_t state = 0;
    std::uint32_t generation = ~0u;

    std::uint64_t next() {
        const std::uint32_t g = g_fork_generation.load(std::memory_order_relaxed);
        if (generation != g) {
            static const int registered = pthread_atfork(nullptr, nullptr, on_fork_child);
            (void)registered;
            state = seed64();
            generation = g;
        }
        // splitmix64: a bijection of the counter, so one thread never repeats.
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
};

thread_local Rng t_rng;

std::uint64_t next_clock() {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const std::uint64_t floor = (static_cast<std::uint64_t>(now) & 0xFFFFFFFFFFFFULL) << 12;
    std::uint64_t last = g_last.load(std::memory_order_relaxed);
    std::uint64_t next;
    do {
        next = floor > last ? floor : last + 1;
    } while (!g_last.compare_exchange_weak(last, next, std::memory_order_relaxed));
    return next;
}

}  // namespace

void new_id(char* out) {
    const std::uint64_t clock = next_clock();  // 60 bits: ms (48) | counter (12)
    const std::uint64_t rnd = t_rng.next();
    unsigned char b[16];
    const std::uint64_t ms = clock >> 12;
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    b[6] = static_cast<unsigned char>(0x70 | ((clock >> 8) & 0x0F));
    b[7] = static_cast<unsigned char>(clock & 0xFF);
    b[8] = static_cast<unsigned char>(0x80 | ((rnd >> 56) & 0x3F));
    for (int i = 9; i < 16; ++i) b[i] = static_cast<unsigned char>(rnd >> (8 * (15 - i)));

    char* p = out;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = encoding::kHexDigits[b[i] >> 4];
        *p++ = encoding::kHexDigits[b[i] & 0x0F];
    }
}

std::string new_id() {
    std::string s(kIdLength, '\0');
    new_id(s.data());
    return s;
}

std::optional<Timestamp> id_time(std::string_view id) {
    if (id.size() != kIdLength || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' || id[14] != '7')
        return std::nullopt;
    std::uint64_t ms = 0;
    int n = 0;
    for (std::size_t i = 0; i < kIdLength; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) continue;
        const int v = encoding::hex_digit_value(id[i]);
        if (v < 0) return std::nullopt;
        if (n++ < 12) ms = ms << 4 | static_cast<unsigned>(v);
    }
    return Timestamp{std::chrono::milliseconds{static_cast<std::int64_t>(ms)}};
}

}  // namespace omnibus::envelope
