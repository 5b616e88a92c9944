// DedupIndex: the flat table behind the dedup window, checked against std::unordered_map over
// random insertions, lookups and erasures, with keys crowded onto a few home slots so that
// probe chains wrap around the table and backward-shift deletion has work to do.
#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>

#include "connectors/whatsapp/dedup_index.h"

using omnibus::connectors::whatsapp::DedupIndex;
using omnibus::connectors::whatsapp::DedupKey;

namespace {
struct Hash {
    std::size_t operator()(const DedupKey& k) const { return static_cast<std::size_t>(k.lo ^ (k.hi * 31)); }
};
}  // namespace

TEST_CASE("dedup index: the same answers as std::unordered_map under random work", "[whatsapp][dedup]") {
    // Home slots in use: three (long chains that wrap; fewer operations) or any.
    const auto [spread, ops] = GENERATE(table<std::uint64_t, int>({{3, 6000}, {1u << 20, 200000}}));
    std::mt19937_64 rng(spread);
    DedupIndex index;
    std::unordered_map<DedupKey, std::int64_t, Hash> model;
    std::vector<DedupKey> known;
    for (int op = 0; op < ops; ++op) {
        const auto r = rng() % 10;
        DedupKey k;
        if (r < 4 || known.empty()) {
            // A new key whose low bits (the home slot) fall in a small range near the table's end,
            // so chains wrap to the start.
            k = DedupKey{rng(), (rng() << 20) | (1020 + rng() % spread) % (1u << 20)};
            known.push_back(k);
        } else {
            k = known[rng() % known.size()];
        }
        const std::int64_t v = static_cast<std::int64_t>(rng() % 1000000) + 1;
        if (r < 6) {
            auto [it, fresh] = index.try_emplace(k, v);
            auto [mit, mfresh] = model.try_emplace(k, v);
            REQUIRE(fresh == mfresh);
            REQUIRE(it->second == mit->second);
        } else if (r < 7) {
            index[k] = v;
            model[k] = v;
        } else if (r < 9) {
            REQUIRE(index.erase(k) == (model.erase(k) == 1));
        } else {
            auto it = index.find(k);
            auto mit = model.find(k);
            REQUIRE((it != index.end()) == (mit != model.end()));
            if (it) REQUIRE(it->second == mit->second);
        }
        REQUIRE(index.size() == model.size());
    }
    // Everything the model holds is found, with its value; erased keys are not.
    for (const auto& k : known) {
        auto it = index.find(k);
        auto mit = model.find(k);
        REQUIRE((it != index.end()) == (mit != model.end()));
        if (it) CHECK(it->second == mit->second);
    }
    CHECK(index.capacity() * 3 >= index.size() * 4);  // load stays at or under 3/4
}

TEST_CASE("dedup index: erasing through an iterator keeps the rest of a wrapped chain reachable",
          "[whatsapp][dedup]") {
    DedupIndex index;
    const std::size_t last = index.capacity() - 1;
    // Five keys at home `last`: they fill last, 0, 1, 2, 3.
    std::vector<DedupKey> chain;
    for (std::uint64_t i = 0; i < 5; ++i) chain.push_back(DedupKey{i, last + index.capacity() * (i + 1)});
    const DedupKey at_zero{99, index.capacity() * 7};  // home 0: behind the chain, at 4
    for (const auto& k : chain) index.try_emplace(k, 1);
    index.try_emplace(at_zero, 2);
    index.erase(index.find(chain[0]));
    index.erase(index.find(chain[2]));
    for (std::size_t i : {1, 3, 4}) CHECK(index.find(chain[i]) != index.end());
    CHECK(index.find(chain[0]) == index.end());
    CHECK(index.find(chain[2]) == index.end());
    REQUIRE(index.find(at_zero) != index.end());
    CHECK(index.find(at_zero)->second == 2);
    CHECK(index.size() == 4);
}
