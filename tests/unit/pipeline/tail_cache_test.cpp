// TailCache in front of HistoryStore: a store with the cache answers every read exactly as one
// without it, through random writes of every kind (new, older and repeated entries, removals,
// states, erasures, purges, changelog records, wipes); the cache stays within its byte budget;
// a store that is closed takes its tails with it.
#include <catch2/catch.hpp>

#include <random>

#include "pipeline/history/history_store.h"
#include "pipeline/history/tail_cache.h"
#include "support/scratch_dir.h"

using namespace omnibus::pipeline::history;
using omnibus::test::ScratchDir;

namespace {

HistoryEntry entry(std::string customer, std::int64_t at, std::string id, std::size_t text_len) {
    HistoryEntry e;
    e.customer = std::move(customer);
    e.at_ms = at;
    e.id = std::move(id);
    e.conversation = "conv-" + std::to_string(at / 1000);
    e.conversation_started_ms = at - at % 1000;
    e.channel_type = "whatsapp";
    e.channel_name = "wa";
    e.content_type = "text";
    e.text = std::string(text_len, 'x');
    e.author = "customer";
    e.sender = "whatsapp:1555";
    return e;
}

std::vector<std::string> keys(const std::vector<HistoryEntry>& v) {
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(entry_key(e.customer, e.at_ms, e.id));
    return out;
}

}  // namespace

TEST_CASE("tail cache: a cached store answers every read as an uncached one, through random writes",
          "[pipeline][history]") {
    const std::size_t keep = GENERATE(1, 3, 20);
    const std::size_t budget = GENERATE(50, 100000);
    const std::size_t cache_bytes = GENERATE(std::size_t{1500}, std::size_t{1} << 20);  // tight: evictions, and tails over the budget
    CAPTURE(keep, budget, cache_bytes);
    ScratchDir dir;
    auto cache = std::make_shared<TailCache>(keep, budget, cache_bytes);
    HistoryStore plain(dir.path() + "/plain");
    HistoryStore cached(dir.path() + "/cached", cache);
    std::mt19937 rng(static_cast<unsigned>(keep * 7919 + budget + cache_bytes));
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const std::vector<std::string> customers{"c-1", "c-2", "c-3", "c-10", "c-1x"};
    std::vector<std::string> written;  // entry keys ever written (some removed since)
    int next_id = 0;

    auto both = [&](auto&& write) {
        auto a = write(plain);
        auto b = write(cached);
        REQUIRE(a == b);  // the same changes to mirror
    };
    auto compare = [&](const std::string& c) {
        CAPTURE(c);
        auto pl = plain.last(c), cl = cached.last(c);
        REQUIRE(pl == cl);
        REQUIRE(plain.last_conversation(c) == cached.last_conversation(c));
        REQUIRE(plain.state(c) == cached.state(c));
        for (std::size_t count : {std::size_t{1}, keep, keep + 2}) {
            for (std::size_t bytes : {budget, budget / 2, std::size_t{SIZE_MAX}}) {
                CAPTURE(count, bytes);
                REQUIRE(keys(plain.recent(c, {}, count, bytes)) == keys(cached.recent(c, {}, count, bytes)));
                // Before a key that is not there (a new message) and before one that is.
                const std::string fresh = entry_key(c, 5000 + next_id, "new");
                REQUIRE(plain.recent(c, fresh, count, bytes) == cached.recent(c, fresh, count, bytes));
                std::vector<std::string> own;  // the stage reads before keys of the customer's own
                for (const auto& k : written)
                    if (k.starts_with("h/" + c + "/")) own.push_back(k);
                if (!own.empty()) {
                    const std::string& k = own[static_cast<std::size_t>(pick(static_cast<int>(own.size())))];
                    CAPTURE(k);
                    REQUIRE(keys(plain.recent(c, k, count, bytes)) == keys(cached.recent(c, k, count, bytes)));
                }
            }
        }
        for (const auto& k : written)
            if (k.starts_with("h/" + c + "/")) REQUIRE(plain.find(k) == cached.find(k));
        REQUIRE(plain.find(entry_key(c, 1, "never")) == cached.find(entry_key(c, 1, "never")));
    };

    for (int step = 0; step < 400; ++step) {
        const std::string& c = customers[static_cast<std::size_t>(pick(static_cast<int>(customers.size())))];
        const int op = pick(100);
        CAPTURE(step, op);
        if (op < 45) {  // a new message, mostly the newest, sometimes older than what is there
            const std::int64_t at = op < 35 ? 1000 + next_id * 10 : 1000 + pick(next_id * 10 + 1);
            HistoryEntry e = entry(c, at, "m" + std::to_string(next_id++), static_cast<std::size_t>(pick(40)));
            written.push_back(entry_key(e.customer, e.at_ms, e.id));
            both([&](HistoryStore& s) { return s.put(e); });
        } else if (op < 50 && !written.empty()) {  // the same message written again
            const std::string k = written[static_cast<std::size_t>(pick(static_cast<int>(written.size())))];
            if (auto e = plain.find(k)) both([&](HistoryStore& s) { return s.put(*e); });
        } else if (op < 58 && !written.empty()) {  // a rollback removes an entry
            const std::string k = written[static_cast<std::size_t>(pick(static_cast<int>(written.size())))];
            both([&](HistoryStore& s) { return s.remove(k); });
        } else if (op < 70) {
            const std::string value = "state-" + std::to_string(step);
            both([&](HistoryStore& s) { return s.put_state(c, value); });
        } else if (op < 73) {
            both([&](HistoryStore& s) { return s.remove("s/" + c); });
        } else if (op < 76) {
            both([&](HistoryStore& s) { return s.erase_customer(c); });
        } else if (op < 79) {
            const std::int64_t cutoff = 1000 + pick(next_id * 10 + 1);
            both([&](HistoryStore& s) {
                std::string cursor;
                std::vector<Change> all;
                do {
                    auto part = s.purge_before(cutoff, cursor, 7);
                    all.insert(all.end(), part.begin(), part.end());
                } while (!cursor.empty());
                return all;
            });
        } else if (op < 84) {  // changelog records, as a restore or a rollback applies them
            std::vector<Change> changes;
            const std::int64_t at = 1000 + pick(next_id * 10 + 1);
            HistoryEntry e = entry(c, at, "r" + std::to_string(next_id++), 5);
            written.push_back(entry_key(e.customer, e.at_ms, e.id));
            changes.push_back({written.back(), encode(e)});
            changes.push_back({"s/" + c, pick(2) ? std::optional<std::string>("restored") : std::nullopt});
            if (written.size() > 1) changes.push_back({written[static_cast<std::size_t>(pick(static_cast<int>(written.size())))], std::nullopt});
            both([&](HistoryStore& s) {
                s.apply_changelog(changes);
                return 0;
            });
        } else if (op < 85) {
            both([&](HistoryStore& s) {
                s.wipe();
                return 0;
            });
        }
        compare(c);
        if (step % 50 == 49)
            for (const auto& other : customers) compare(other);
    }
    const auto st = cache->stats();
    CHECK(st.hits > 0);
    CHECK(st.bytes <= cache_bytes);
    if (cache_bytes < 10000) CHECK(st.evictions > 0);
}

TEST_CASE("tail cache: answers from memory once loaded, keeps what a context needs, within its budget",
          "[pipeline][history]") {
    ScratchDir dir;
    auto cache = std::make_shared<TailCache>(3, 1000, 1 << 20);
    HistoryStore store(dir.path() + "/s", cache);
    for (int i = 0; i < 10; ++i) store.put(entry("c-1", 1000 + i, "m" + std::to_string(i), 10));
    CHECK(cache->stats().tails == 0);  // writes do not load tails
    auto ctx = store.recent("c-1", entry_key("c-1", 2000, "new"), 3, 1000);
    CHECK(keys(ctx) == std::vector<std::string>{entry_key("c-1", 1007, "m7"), entry_key("c-1", 1008, "m8"),
                                                 entry_key("c-1", 1009, "m9")});
    auto st = cache->stats();
    CHECK(st.misses == 1);
    CHECK(st.tails == 1);
    // The message is written; the next one's reads are all hits.
    store.put(entry("c-1", 2000, "new", 10));
    CHECK(store.last("c-1")->id == "new");
    CHECK(store.state("c-1") == std::nullopt);
    CHECK(store.find(entry_key("c-1", 2000, "new")));
    CHECK_FALSE(store.find(entry_key("c-1", 2001, "next")));
    st = cache->stats();
    CHECK(st.misses == 1);
    CHECK(st.hits >= 4);
    // An older key than the tail reaches is read from RocksDB, without a load.
    CHECK(store.find(entry_key("c-1", 1001, "m1")));
    CHECK(cache->stats().misses == 1);

    SECTION("the budget evicts the least recently used customers") {
        auto small = std::make_shared<TailCache>(3, 1000, 4000);
        HistoryStore s2(dir.path() + "/s2", small);
        for (int c = 0; c < 20; ++c) {
            const std::string customer = "k-" + std::to_string(c);
            for (int i = 0; i < 3; ++i) s2.put(entry(customer, 1000 + i, "m" + std::to_string(i), 100));
            CHECK(s2.last(customer)->id == "m2");
            CHECK(small->stats().bytes <= 4000);
        }
        const auto st2 = small->stats();
        CHECK(st2.evictions > 0);
        CHECK(st2.tails < 20);
        CHECK(s2.last("k-0")->id == "m2");  // evicted, loaded again
    }
    SECTION("a closed store's tails go with it: its partition's next owner may have written since") {
        store.put_state("c-1", "open");
        CHECK(store.state("c-1") == "open");
        CHECK(cache->stats().tails == 1);
        HistoryStore* other = new HistoryStore(dir.path() + "/other", cache);
        CHECK(other->last("c-1") == std::nullopt);  // another store's tail is not this one's
        CHECK(other->state("c-1") == std::nullopt);
        delete other;
        CHECK(cache->stats().tails == 0);
        CHECK(store.state("c-1") == "open");
    }
}
