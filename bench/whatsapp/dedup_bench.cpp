// The dedup window under a long stream of new webhook ids, as the edge uses it: one claim and
// one settle per webhook, against a store on disk (its writer thread persisting behind).
// Prints the mean cost per webhook and the slowest single claim+settle: every webhook of
// every edge worker waits behind the store's mutex, so the slowest one is a pause they all
// see. The ceiling is the ingest p99 budget, 10 ms. Also the memory an id costs (what a week's
// window of ids needs). A figure to watch (make bench), not a test.
//
//   bench_dedup [IDS]   (default 2,000,000: the index grows from 1,024 slots to 4 million)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <vector>

#include "connectors/whatsapp/dedup_store.h"

using namespace omnibus::connectors::whatsapp;
using Clock = std::chrono::steady_clock;

namespace {
long rss_kib() {  // resident set of this process, from /proc/self/statm (pages)
    long size = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}
}  // namespace

int main(int argc, char** argv) {
    const long ids = argc > 1 ? std::atol(argv[1]) : 2'000'000;
    if (ids < 1000) {
        std::fprintf(stderr, "bench_dedup: IDS must be at least 1000\n");
        return 2;
    }
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("omnibus-bench-dedup-" + std::to_string(::getpid()));
    std::vector<double> us(static_cast<std::size_t>(ids));
    double worst = 0;
    long worst_at = 0;
    long rss_before = 0, rss_after = 0;
    {
        DedupStore store(DedupStore::Options{dir.string(), std::chrono::hours(168), {}});
        rss_before = rss_kib();
        std::vector<DedupStore::Seen> seen;
        std::vector<DedupKey> one(1);
        const unsigned char accepted[1] = {1};
        for (long i = 0; i < ids; ++i) {
            one[0] = dedup_key("wamid.HBgLMTU1NTAwMDAwMDAVAgASGBQzQUI" + std::to_string(i));
            const auto t0 = Clock::now();
            store.claim(one, seen, {});
            store.settle(one, accepted);
            const double d = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
            us[static_cast<std::size_t>(i)] = d;
            if (d > worst) {
                worst = d;
                worst_at = i;
            }
            if (seen[0] != DedupStore::Seen::claimed) std::abort();
        }
        if (store.size() != static_cast<std::size_t>(ids)) std::abort();
        rss_after = rss_kib();
    }
    std::filesystem::remove_all(dir);
    double sum = 0;
    for (double d : us) sum += d;
    std::vector<double> sorted = us;
    const auto at = [&](double q) {
        const auto k = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
        std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(k), sorted.end());
        return sorted[k];
    };
    const double p999 = at(0.999);
    std::printf(
        "dedup window, %ld new ids (claim + settle each, store on disk): mean %.2f us, p99.9 %.2f us, "
        "slowest %.0f us (at id %ld) = %.3f of the 10 ms ingest p99 budget\n",
        ids, sum / static_cast<double>(ids), p999, worst, worst_at, worst / 10'000.0);
    std::printf("  memory: %.0f bytes per id (resident set growth over the run, RocksDB's memtables included)\n",
                1024.0 * static_cast<double>(rss_after - rss_before) / static_cast<double>(ids));
    return 0;
}
