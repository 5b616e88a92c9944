// ns per inbound message to classify it (language, intent, entities, sentiment) and route it
// with the built-in rules, over the ten-language test corpus: p50 and p99 against the
// pipeline's budget of 10 µs per message for both together (make bench), not a test.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/classify/classifier.h"
#include "pipeline/route/router.h"

using namespace omnibus;

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : std::string(OMNIBUS_SOURCE_DIR) + "/tests/data/classify/corpus.tsv";
    std::ifstream in(path);
    std::vector<envelope::Envelope> envs;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const auto tab = line.rfind('\t');
        envelope::Envelope e;
        e.channel = {"whatsapp", "wa"};
        e.content.text = line.substr(tab + 1);
        envs.push_back(std::move(e));
    }
    if (envs.empty()) {
        std::fprintf(stderr, "no messages in %s\n", path.c_str());
        return 1;
    }
    auto classifier = pipeline::classify::Classifier::builtin();
    auto router = pipeline::route::Router::builtin();
    pipeline::route::HandoffState handoff;
    pipeline::route::RouteContext ctx;
    ctx.handoff = &handoff;
    ctx.now = std::chrono::system_clock::now();
    std::vector<double> classify_ns, both_ns;
    std::vector<std::vector<double>> per_message(envs.size());
    const int rounds = 200;
    classify_ns.reserve(envs.size() * rounds);
    both_ns.reserve(envs.size() * rounds);
    std::size_t sink = 0;
    for (int r = 0; r < rounds; ++r) {
        for (std::size_t i = 0; i < envs.size(); ++i) {
            envelope::Envelope env = envs[i];
            const auto t0 = std::chrono::steady_clock::now();
            classifier->apply(env, "en");
            const auto t1 = std::chrono::steady_clock::now();
            env.route = router->route(env, ctx).to_route();
            const auto t2 = std::chrono::steady_clock::now();
            sink += env.route->priority;
            if (r == 0) continue;  // warm-up
            classify_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
            both_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t0).count());
            per_message[i].push_back(both_ns.back());
        }
    }
    auto pct = [](std::vector<double> v, double p) {
        std::sort(v.begin(), v.end());
        return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
    };
    std::printf("classify + route: %zu messages x %d rounds (ten languages, built-in rules)%s\n", envs.size(), rounds - 1,
                sink == 0 ? "" : "");
    std::printf("  classify          p50 %6.2f µs  p99 %6.2f µs\n", pct(classify_ns, 0.5) / 1000, pct(classify_ns, 0.99) / 1000);
    std::printf("  classify + route  p50 %6.2f µs  p99 %6.2f µs  (budget ≤ 10 µs at p99: %.2f of it)\n",
                pct(both_ns, 0.5) / 1000, pct(both_ns, 0.99) / 1000, pct(both_ns, 0.99) / 10000);
    // Where the tail comes from: the messages with the highest median cost.
    std::vector<std::pair<double, std::size_t>> medians;
    for (std::size_t i = 0; i < envs.size(); ++i) medians.emplace_back(pct(per_message[i], 0.5), i);
    std::sort(medians.rbegin(), medians.rend());
    for (std::size_t k = 0; k < 3 && k < medians.size(); ++k) {
        const std::string& t = *envs[medians[k].second].content.text;
        std::printf("  slowest #%zu median %6.2f µs, %zu bytes: %.40s\n", k + 1, medians[k].first / 1000, t.size(),
                    t.c_str());
    }
    return 0;
}
