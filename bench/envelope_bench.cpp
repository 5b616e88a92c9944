// Prints ns/op (thread CPU time, best of 5) of envelope encode, decode and id
// generation for a typical inbound WhatsApp text message (~700-byte body with
// its platform payload). Not a test: a figure to watch.
//
// usage: bench_envelope [iterations]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "envelope/envelope.h"
#include "unit/envelope/envelope_samples.h"

using namespace omnibus;
using namespace omnibus::envelope;

namespace {

// Thread CPU time, best of 5 rounds: the dev machine is shared by parallel
// builds, and wall time there measures the scheduler as much as the code.
double cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

template <class F>
double ns_per_op(long iterations, F&& f) {
    for (long i = 0; i < iterations / 10 + 1; ++i) f();  // warm up
    const long per_round = iterations / 5 + 1;
    double best = 1e300;
    for (int round = 0; round < 5; ++round) {
        const double t0 = cpu_ns();
        for (long i = 0; i < per_round; ++i) f();
        const double t = (cpu_ns() - t0) / static_cast<double>(per_round);
        if (t < best) best = t;
    }
    return best;
}

volatile std::size_t g_sink;  // keeps results observable

}  // namespace

int main(int argc, char** argv) {
    const long n = argc > 1 ? std::atol(argv[1]) : 500000;
    const Envelope env = testing::typical_text_envelope();
    const kafka::Record rec = encode(env, env.sender.id);
    if (!decode(rec).ok()) {
        std::fprintf(stderr, "bench_envelope: the sample does not decode\n");
        return 1;
    }
    const Envelope full = testing::full_envelope();
    const kafka::Record full_rec = encode(full, full.sender.id);

    const double enc = ns_per_op(n, [&] { g_sink = encode(env, env.sender.id).value.size(); });
    const double dec = ns_per_op(n, [&] { g_sink = decode(rec)->content.text->size(); });
    const double both = ns_per_op(n, [&] { g_sink = decode(encode(env, env.sender.id))->id.size(); });
    const double full_enc = ns_per_op(n / 2, [&] { g_sink = encode(full, full.sender.id).value.size(); });
    const double full_dec = ns_per_op(n / 2, [&] { g_sink = decode(full_rec)->id.size(); });
    const double id = ns_per_op(n * 4, [] { g_sink = new_id().size(); });

    std::printf("envelope typical text message: body %zu bytes, %zu headers\n", rec.value.size(), rec.headers.size());
    std::printf("  encode          %8.0f ns/op\n", enc);
    std::printf("  decode          %8.0f ns/op\n", dec);
    std::printf("  encode+decode   %8.0f ns/op\n", both);
    std::printf("envelope with every field: body %zu bytes\n", full_rec.value.size());
    std::printf("  encode          %8.0f ns/op\n", full_enc);
    std::printf("  decode          %8.0f ns/op\n", full_dec);
    std::printf("new_id            %8.0f ns/op\n", id);
    return 0;
}
