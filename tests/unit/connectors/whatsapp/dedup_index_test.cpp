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
using Model = std::unordered_map<DedupKey, std::int64_t, Hash>;

// Each of `keys` is in the index exactly when it is in the model, with the model's value.
void check_matches(DedupIndex& index, const Model& model, const std::vector<DedupKey>& keys) {
    for (const auto& k : keys) {
        auto it = index.find(k);
        auto mit = model.find(k);
        REQUIRE((it != index.end()) == (mit != model.end()));
        if (it) CHECK(it->second == mit->second);
    }
}

// An index and its model, fed the same new random ids.
struct Mirror {
    explicit Mirror(std::uint64_t seed) : rng(seed) {}
    void insert() {
        const DedupKey k{rng(), rng()};
        const std::int64_t v = static_cast<std::int64_t>(rng() % 1000000) + 1;
        REQUIRE(index.try_emplace(k, v).second);
        model[k] = v;
        keys.push_back(k);
    }
    std::mt19937_64 rng;
    DedupIndex index;
    Model model;
    std::vector<DedupKey> keys;  // the ids inserted (a test may drop the ones it erases)
};
}  // namespace

TEST_CASE("dedup index: the same answers as std::unordered_map under random work", "[whatsapp][dedup]") {
    // Home slots in use: three (long chains that wrap; fewer operations) or any.
    const auto [spread, ops] = GENERATE(table<std::uint64_t, int>({{3, 6000}, {1u << 20, 200000}}));
    std::mt19937_64 rng(spread);
    DedupIndex index;
    Model model;
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
    check_matches(index, model, known);
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

TEST_CASE("dedup index: a growth moves the old table a few slots per insertion, never all at once",
          "[whatsapp][dedup]") {
    // A growth that rehashed every id at once held the store's mutex for the whole rehash
    // (150 ms at 800,000 ids). Here every insertion moves at most kStep slots, every id stays
    // findable with its value while the two tables coexist, erasures and updates in the middle
    // of the move land, and the next table was written page by page before it was used.
    Mirror m(7);
    auto& [rng, index, model, keys] = m;
    int growths = 0;
    std::size_t prepared_before = 0;
    while (growths < 5) {
        const std::size_t cap = index.capacity();
        const std::size_t moving = index.growing();
        const std::size_t prepared = index.prepared();
        m.insert();
        if (index.capacity() != cap) {
            // A growth starts: the old table is whole, and the new one was written before.
            ++growths;
            REQUIRE(index.capacity() == 2 * cap);
            REQUIRE(moving == 0);  // the previous growth had ended
            CHECK(index.growing() + DedupIndex::kStep >= cap);
            CHECK(prepared == index.capacity() * sizeof(DedupIndex::Slot));
            prepared_before = prepared;
        } else if (moving > 0) {
            REQUIRE(moving - index.growing() <= DedupIndex::kStep);
        }
        if (index.growing() > 0 && rng() % 8 == 0) {
            // Mid-move: update one id, erase another, look up an absent one.
            const DedupKey& u = keys[rng() % keys.size()];
            if (auto it = index.find(u); it != index.end()) {
                it->second += 1;
                model[u] += 1;
            }
            const DedupKey& e = keys[rng() % keys.size()];
            REQUIRE(index.erase(e) == (model.erase(e) == 1));
            CHECK(index.find(DedupKey{rng(), rng()}) == index.end());
        }
        CHECK(index.capacity() * 3 >= index.size() * 4);
    }
    CHECK(prepared_before > 0);
    REQUIRE(index.size() == model.size());
    check_matches(index, model, keys);
}

TEST_CASE("dedup index: lookups find ids whose chain wraps through the part already moved",
          "[whatsapp][dedup]") {
    // Every key's home is one of the last slots of the table, so the chains wrap to slot 0,
    // and the move, which starts at slot 0, takes their tails first. The ids past the moved
    // (and released) part must stay reachable from their homes, and absent ones must not loop.
    DedupIndex index;
    std::mt19937_64 rng(11);
    std::vector<DedupKey> keys;
    const std::size_t cap = index.capacity();
    while (index.capacity() == cap || index.growing() > cap / 2) {
        const DedupKey k{rng(), (rng() << 32) | (cap - 1 - rng() % 2)};
        index.try_emplace(k, static_cast<std::int64_t>(keys.size()) + 1);
        keys.push_back(k);
    }
    REQUIRE(index.growing() > 0);
    for (std::size_t i = 0; i < keys.size(); ++i) {
        auto it = index.find(keys[i]);
        REQUIRE(it != index.end());
        CHECK(it->second == static_cast<std::int64_t>(i) + 1);
    }
    CHECK(index.find(DedupKey{1, cap - 1}) == index.end());
    CHECK(index.find(DedupKey{2, 5}) == index.end());
}

TEST_CASE("dedup index: a next table prepared for a growth is let go piecewise when ids expire first",
          "[whatsapp][dedup]") {
    Mirror m(5);
    auto& [rng, index, model, keys] = m;
    const auto insert = [&m] { m.insert(); };
    // A table of 65,536 slots, then past a load of 0.72, short of 0.75: the next table is
    // being written, a page per insertion.
    while (index.capacity() < 65536 || index.growing() > 0) insert();
    const std::size_t cap = index.capacity();
    while (index.size() * 100 < cap * 73) insert();
    REQUIRE(index.capacity() == cap);
    const std::size_t written = index.prepared();
    REQUIRE(written > 0);
    // Ids expire: the load falls under 0.7, and each insertion hands back at most 16 pages.
    while (index.size() * 100 >= cap * 60) {
        const DedupKey k = keys.back();
        keys.pop_back();
        REQUIRE(index.erase(k));
        model.erase(k);
    }
    std::size_t before = index.prepared();
    REQUIRE(before == written);
    int calls = 0;
    while (index.prepared() > 0) {
        index.try_emplace(keys[rng() % keys.size()], 1);  // present: changes nothing
        CHECK(before - index.prepared() <= 16 * 4096);
        before = index.prepared();
        REQUIRE(++calls < 100000);
    }
    CHECK(calls > 1);
    // Growing later still works, from a table prepared anew.
    while (index.capacity() == cap) insert();
    while (index.growing() > 0) insert();
    REQUIRE(index.size() == model.size());
    check_matches(index, model, keys);  // keys: the ids still in the model
}
