// IdentityStore: the RocksDB copy of the identity state agrees with the in-memory state
// machine, keeps its offset with its changes, survives a reopen and can be wiped.
#include <catch2/catch.hpp>

#include <random>

#include "pipeline/identity/identity_store.h"
#include "pipeline/identity/memory_store.h"
#include "support/scratch_dir.h"

using namespace omnibus::pipeline::identity;
using omnibus::test::ScratchDir;

namespace {

Request observe(std::string id, std::string proposed, std::vector<std::string> identities) {
    return Request{Op::observe, std::move(id), std::move(proposed), std::move(identities), 1000, "test", {}};
}

// Request "r<off>" erasing `customer`.
Request erase_request(std::int64_t off, std::string customer) {
    return Request{Op::erase, "r" + std::to_string(off), std::move(customer), {}, 1, "t", {}};
}

// One log fed to a RocksDB store and to the in-memory state machine, from a seeded random source.
struct Twins {
    explicit Twins(unsigned seed) : rocks(dir.path() + "/identity"), rng(seed) {}
    int pick(int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); }
    // The survivor an identity belongs to in the state machine, and the store's answer.
    std::pair<std::optional<Customer>, std::optional<std::string>> both(const std::string& ident) {
        auto m = memory.customer_of(ident);
        return {m ? resolve(memory, *m) : std::nullopt, rocks.resolve_identity(ident)};
    }

    ScratchDir dir;  // before rocks: the store lives in it
    IdentityStore rocks;
    MemoryStore memory;
    std::mt19937 rng;
};

}  // namespace

TEST_CASE("identity store: batches apply with their offset, survive a reopen, skip what was applied",
          "[pipeline][identity][store]") {
    ScratchDir dir;
    const std::string path = dir.path() + "/identity";
    {
        IdentityStore s(path);
        CHECK(s.next_offset() == 0);
        CHECK(s.applied_ms() == 0);
        std::vector<LogEntry> batch{{0, observe("r1", "c-a", {"whatsapp:1555", "phone:+1555"})},
                                    {1, std::nullopt},  // a tombstone: skipped, offset still moves
                                    {2, observe("r2", "c-b", {"email:ana@example.com"})}};
        auto outcomes = s.apply(batch, 5000);
        REQUIRE(outcomes.size() == 2);
        CHECK(outcomes[0].first == 0);
        CHECK(outcomes[0].second.created);
        CHECK(outcomes[1].first == 2);
        CHECK(s.next_offset() == 3);
        CHECK(s.applied_ms() == 5000);
        CHECK(s.resolve_identity("phone:+1555") == "c-a");

        // Offsets already applied are skipped (a reader that re-reads after a restart).
        std::vector<LogEntry> again{{2, observe("r2", "c-b", {"email:ana@example.com"})},
                                    {3, Request{Op::link, "r3", "c-b", {"phone:+1555"}, 2000, "admin", {}}}};
        auto o2 = s.apply(again, 6000);
        REQUIRE(o2.size() == 1);
        CHECK(o2[0].first == 3);
        CHECK(o2[0].second.merges == std::vector<Merge>{{"c-b", "c-a"}});
        CHECK(s.next_offset() == 4);
    }
    IdentityStore reopened(path);
    CHECK(reopened.next_offset() == 4);
    CHECK(reopened.resolve_identity("email:ana@example.com") == "c-a");
    CHECK(reopened.resolve("c-b")->id == "c-a");
    CHECK(reopened.customer("c-b")->merged_into == "c-a");
    CHECK_FALSE(reopened.customer_of("whatsapp:nobody"));

    reopened.wipe();
    CHECK(reopened.next_offset() == 0);
    CHECK_FALSE(reopened.customer_of("phone:+1555"));
}

TEST_CASE("identity store: the same log gives the same state as the in-memory state machine",
          "[pipeline][identity][store]") {
    Twins t(7);
    IdentityStore& rocks = t.rocks;
    MemoryStore& memory = t.memory;
    auto pick = [&](int n) { return t.pick(n); };
    const std::vector<std::string> kinds = {"whatsapp", "phone", "email", "webchat"};
    std::vector<std::string> all;
    std::vector<LogEntry> batch;
    for (std::int64_t off = 0; off < 2000; ++off) {
        std::vector<std::string> ids;
        for (int k = 1 + pick(3); k > 0; --k) {
            ids.push_back(kinds[pick(4)] + ":" + std::to_string(pick(300)));
            all.push_back(ids.back());
        }
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        Request r = pick(20) == 0 && off > 10 ? erase_request(off, "c" + std::to_string(pick(static_cast<int>(off))))
                                              : observe("r" + std::to_string(off), "c" + std::to_string(off), ids);
        (void)apply(r, off, memory);
        batch.push_back({off, r});
        if (batch.size() == 64 || off == 1999) {  // batches of varying content, one write each
            (void)rocks.apply(batch, off);
            batch.clear();
        }
    }
    CHECK(rocks.next_offset() == 2000);
    int linked = 0;
    for (const auto& ident : all) {
        auto [expected, got] = t.both(ident);
        INFO(ident);
        REQUIRE(got.has_value() == expected.has_value());
        if (got) {
            CHECK(*got == expected->id);
            ++linked;
        }
    }
    CHECK(linked > 100);
}

TEST_CASE("identity store: a path that cannot be a directory is a clear error", "[pipeline][identity][store]") {
    ScratchDir dir;
    const std::string file = dir.path() + "/file";
    FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
    try {
        IdentityStore s(file + "/identity");
        FAIL("opened a store under a regular file");
    } catch (const std::runtime_error& e) {
        CHECK_THAT(e.what(), Catch::Contains(file));
    }
}

TEST_CASE("identity store: cached reads never answer older than the last apply or wipe",
          "[pipeline][identity][store]") {
    Twins t(11);
    IdentityStore& rocks = t.rocks;
    MemoryStore& memory = t.memory;
    auto pick = [&](int n) { return t.pick(n); };
    const std::vector<std::string> kinds = {"whatsapp", "phone", "email"};
    auto check_all = [&](int identities) {
        // Every identity read, found or not: the store caches both, so the next batch's
        // changes must reach what was cached here.
        for (int i = 0; i < identities; ++i)
            for (const auto& kind : kinds) {
                const std::string ident = kind + ":" + std::to_string(i);
                auto [expected, got] = t.both(ident);
                INFO(ident);
                REQUIRE(got.has_value() == expected.has_value());
                if (got) {
                    REQUIRE(*got == expected->id);
                    auto c = rocks.resolve(*got);
                    REQUIRE(c);
                    CHECK(c->identities == expected->identities);
                }
            }
    };
    check_all(40);  // all unknown, all cached as such
    auto check_customers = [&](std::int64_t upto) {
        // Every customer id ever proposed, aliases and erased ones included.
        for (std::int64_t i = 0; i < upto; ++i) {
            const std::string id = "c" + std::to_string(i);
            auto expected = resolve(memory, id);
            auto got = rocks.survivor(id);
            INFO(id);
            REQUIRE((got != nullptr) == expected.has_value());
            if (got) CHECK(got->id == expected->id);
        }
    };
    std::vector<LogEntry> batch;
    for (std::int64_t off = 0; off < 600; ++off) {
        Request r;
        const int k = pick(10);
        if (k == 0 && off > 10) {
            r = erase_request(off, "c" + std::to_string(pick(static_cast<int>(off))));
        } else if (k == 1 && off > 10) {
            r = Request{Op::unlink, "r" + std::to_string(off), "c" + std::to_string(pick(static_cast<int>(off))),
                        {kinds[pick(3)] + ":" + std::to_string(pick(40))}, 1, "t", {}};
        } else {
            std::vector<std::string> ids{kinds[pick(3)] + ":" + std::to_string(pick(40))};
            if (pick(2) == 0) ids.push_back(kinds[pick(3)] + ":" + std::to_string(pick(40)));  // may merge two
            std::sort(ids.begin(), ids.end());
            ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
            r = observe("r" + std::to_string(off), "c" + std::to_string(off), ids);
        }
        (void)apply(r, off, memory);
        batch.push_back({off, r});
        if (batch.size() == 1 + static_cast<std::size_t>(pick(8))) {
            (void)rocks.apply(batch, off);
            batch.clear();
            check_all(40);
            check_customers(off + 1);
        }
    }
    int linked = 0;
    for (int i = 0; i < 40; ++i)
        for (const auto& kind : kinds) linked += rocks.resolve_identity(kind + ":" + std::to_string(i)) ? 1 : 0;
    REQUIRE(linked > 0);  // cached as found, just now
    rocks.wipe();
    for (int i = 0; i < 40; ++i)
        for (const auto& kind : kinds) CHECK_FALSE(rocks.resolve_identity(kind + ":" + std::to_string(i)));
    CHECK(rocks.next_offset() == 0);
}
