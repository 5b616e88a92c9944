// The persistent dedup window on a real RocksDB directory, with a fake clock:
// claims, waiters, expiry, and what survives a reopen.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "connectors/whatsapp/dedup_store.h"
#include "support/scratch_dir.h"

using namespace omnibus::connectors::whatsapp;
using namespace std::chrono_literals;
using Seen = DedupStore::Seen;

namespace {

struct Dir : omnibus::test::ScratchDir {
    Dir() : ScratchDir("omnibus-dedup"), path(ScratchDir::path()) {}
    std::string path;
};

struct FakeClock {
    std::atomic<std::int64_t> now{1'700'000'000'000};
    std::function<std::int64_t()> fn() {
        return [this] { return now.load(); };
    }
};

DedupStore::Options options(const Dir& d, FakeClock& c) {
    return DedupStore::Options{d.path + "/channels/wa/dedup", 1h, c.fn()};
}

void accept(DedupStore& s, const std::vector<DedupKey>& keys) {
    std::vector<Seen> seen;
    s.claim(keys, seen, [](bool) {});
    std::vector<DedupKey> claimed;
    for (size_t i = 0; i < keys.size(); ++i)
        if (seen[i] == Seen::claimed) claimed.push_back(keys[i]);
    s.settle(claimed, std::vector<unsigned char>(claimed.size(), 1));
}

}  // namespace

TEST_CASE("dedup store: claimed → accepted is a duplicate, a failed claim is forgotten") {
    Dir dir;
    FakeClock clock;
    DedupStore store(options(dir, clock));
    const DedupKey a = dedup_key("m\x1fwamid.A"), b = dedup_key("m\x1fwamid.B");
    CHECK_FALSE(a == b);
    CHECK(dedup_key("m\x1fwamid.A") == a);

    std::vector<Seen> seen;
    store.claim(std::vector<DedupKey>{a, b}, seen, [](bool) {});
    CHECK(seen == std::vector<Seen>{Seen::claimed, Seen::claimed});
    store.settle(std::vector<DedupKey>{a, b}, std::vector<unsigned char>{1, 0});
    CHECK(store.contains(a));
    CHECK_FALSE(store.contains(b));

    store.claim(std::vector<DedupKey>{a, b}, seen, [](bool) {});
    CHECK(seen == std::vector<Seen>{Seen::accepted, Seen::claimed});
}

TEST_CASE("dedup store: an id in flight elsewhere waits for the owner's outcome") {
    Dir dir;
    FakeClock clock;
    DedupStore store(options(dir, clock));
    const DedupKey k = dedup_key("m\x1fwamid.X");
    std::vector<Seen> seen;
    store.claim(std::vector<DedupKey>{k}, seen, [](bool) {});
    REQUIRE(seen.front() == Seen::claimed);

    std::vector<int> outcomes;
    store.claim(std::vector<DedupKey>{k, k}, seen, [&](bool ok) { outcomes.push_back(ok ? 1 : 0); });
    CHECK(seen == std::vector<Seen>{Seen::in_flight, Seen::in_flight});
    CHECK(outcomes.empty());
    store.settle(std::vector<DedupKey>{k}, std::vector<unsigned char>{0});  // the owner failed
    CHECK(outcomes == std::vector<int>{0, 0});

    // Retried: claimed again, and this time accepted.
    outcomes.clear();
    store.claim(std::vector<DedupKey>{k}, seen, [](bool) {});
    REQUIRE(seen.front() == Seen::claimed);
    store.claim(std::vector<DedupKey>{k}, seen, [&](bool ok) { outcomes.push_back(ok ? 1 : 0); });
    store.settle(std::vector<DedupKey>{k}, std::vector<unsigned char>{1});
    CHECK(outcomes == std::vector<int>{1});
    CHECK(store.contains(k));
}

TEST_CASE("dedup store: ids expire after the window, in memory and on disk, the rest survive a reopen") {
    Dir dir;
    FakeClock clock;
    const DedupKey old_id = dedup_key("m\x1fwamid.old"), new_id = dedup_key("m\x1fwamid.new");
    {
        DedupStore store(options(dir, clock));
        accept(store, {old_id});
        clock.now += std::chrono::milliseconds(30min).count();
        accept(store, {new_id});
        store.flush();
        CHECK(store.size() == 2);
        clock.now += std::chrono::milliseconds(45min).count();  // old_id is 75 min old, new_id 45 min
        CHECK_FALSE(store.contains(old_id));
        CHECK(store.contains(new_id));
    }
    {
        DedupStore store(options(dir, clock));  // reopened: only the unexpired one is loaded
        CHECK(store.size() == 1);
        CHECK(store.contains(new_id));
        CHECK_FALSE(store.contains(old_id));
        std::vector<Seen> seen;
        store.claim(std::vector<DedupKey>{old_id, new_id}, seen, [](bool) {});
        CHECK(seen == std::vector<Seen>{Seen::claimed, Seen::accepted});
        store.settle(std::vector<DedupKey>{old_id}, std::vector<unsigned char>{0});
    }
    clock.now += std::chrono::milliseconds(2h).count();
    DedupStore store(options(dir, clock));
    CHECK(store.size() == 0);
}

TEST_CASE("dedup store: ids that expired in bulk all leave at the next write, swept in chunks") {
    // The sweep lets the webhooks waiting on the store's mutex in every 4,096 ids; a backlog
    // larger than that (a stalled write, a clock step) must still be swept whole in one pass.
    Dir dir;
    FakeClock clock;
    DedupStore store(options(dir, clock));
    std::vector<DedupKey> old_ids;
    for (int i = 0; i < 10000; ++i) old_ids.push_back(dedup_key("m\x1fwamid.bulk" + std::to_string(i)));
    accept(store, old_ids);
    clock.now += std::chrono::milliseconds(30min).count();
    const DedupKey mid = dedup_key("m\x1fwamid.mid");
    accept(store, {mid});
    store.flush();
    REQUIRE(store.size() == 10001);
    clock.now += std::chrono::milliseconds(45min).count();  // the bulk is 75 min old, mid 45 min
    accept(store, {dedup_key("m\x1fwamid.fresh")});        // queues a write, so flush() waits for a pass
    store.flush();
    CHECK(store.size() == 2);
    CHECK(store.contains(mid));
    for (const auto& k : old_ids) REQUIRE_FALSE(store.expiry(k).has_value());
}

TEST_CASE("dedup store: a second open of the same directory fails with a clear error while the first is open") {
    Dir dir;
    FakeClock clock;
    DedupStore first(options(dir, clock));
    CHECK_THROWS_WITH(DedupStore(options(dir, clock)), Catch::Contains("dedup store") && Catch::Contains("lock"));
    first.close();
    CHECK_NOTHROW(DedupStore(options(dir, clock)));
}

TEST_CASE("dedup store: remembered expiries only move forward, in steps, and survive a reopen") {
    Dir dir;
    FakeClock clock;
    const DedupKey w = dedup_key("w\x1f" "4915123456789");
    const std::int64_t t0 = clock.now.load();
    {
        DedupStore store(options(dir, clock));
        CHECK_FALSE(store.expiry(w));
        store.remember(w, t0 - 1);  // already past: ignored
        CHECK_FALSE(store.expiry(w));
        store.remember(w, t0 + 24 * 3600'000LL);
        CHECK(store.expiry(w) == t0 + 24 * 3600'000LL);
        store.remember(w, t0 + 1000);  // shorter: kept as it was
        CHECK(store.expiry(w) == t0 + 24 * 3600'000LL);
        store.remember(w, t0 + 24 * 3600'000LL + 30'000, 60'000);  // under the resolution: skipped
        CHECK(store.expiry(w) == t0 + 24 * 3600'000LL);
        store.remember(w, t0 + 24 * 3600'000LL + 90'000, 60'000);
        CHECK(store.expiry(w) == t0 + 24 * 3600'000LL + 90'000);
        CHECK(store.contains(w));
    }
    {
        DedupStore store(options(dir, clock));  // from RocksDB
        CHECK(store.expiry(w) == t0 + 24 * 3600'000LL + 90'000);
        clock.now = t0 + 24 * 3600'000LL + 90'000;
        CHECK_FALSE(store.expiry(w));  // closed
    }
}

TEST_CASE("dedup store: a forgotten entry is gone at once and after a reopen, the others stay") {
    Dir dir;
    FakeClock clock;
    const DedupKey erased = dedup_key("w\x1f" "4915123456789"), kept = dedup_key("w\x1f" "4915100000001");
    const DedupKey message = dedup_key("m\x1fwamid.kept");
    const std::int64_t t0 = clock.now.load();
    {
        DedupStore store(options(dir, clock));
        store.remember(erased, t0 + 24 * 3600'000LL);
        store.remember(kept, t0 + 24 * 3600'000LL);
        accept(store, {message});
        store.flush();  // all three on disk first: the deletion has to reach RocksDB, not only memory
        REQUIRE(store.size() == 3);

        CHECK(store.forget(erased));
        CHECK_FALSE(store.expiry(erased));
        CHECK_FALSE(store.contains(erased));
        CHECK(store.size() == 2);
        CHECK_FALSE(store.forget(erased));  // idempotent
        CHECK_FALSE(store.forget(dedup_key("w\x1f" "never-seen")));
        CHECK(store.expiry(kept) == t0 + 24 * 3600'000LL);
        CHECK(store.contains(message));
    }
    {
        DedupStore store(options(dir, clock));  // from RocksDB
        CHECK(store.size() == 2);
        CHECK_FALSE(store.expiry(erased));
        CHECK(store.expiry(kept) == t0 + 24 * 3600'000LL);
        CHECK(store.contains(message));

        // Forgotten, then remembered again (the person writes after the erasure): present, in
        // memory and on disk, although the deletion and the put may share one background write.
        CHECK(store.forget(kept));
        store.remember(kept, t0 + 25 * 3600'000LL);
        CHECK(store.expiry(kept) == t0 + 25 * 3600'000LL);
        // Remembered and forgotten before the writer ran: the put queued for it must not land.
        store.remember(erased, t0 + 24 * 3600'000LL);
        CHECK(store.forget(erased));
    }
    {
        DedupStore store(options(dir, clock));
        CHECK(store.expiry(kept) == t0 + 25 * 3600'000LL);
        CHECK_FALSE(store.expiry(erased));
        CHECK(store.size() == 2);
    }
}

TEST_CASE("dedup store: forgetting an entry that expired is not a removal, and it does not come back") {
    Dir dir;
    FakeClock clock;
    const DedupKey w = dedup_key("w\x1f" "4915123456789");
    {
        DedupStore store(options(dir, clock));
        store.remember(w, clock.now.load() + 1000);
        store.flush();
        clock.now += 2000;
        CHECK_FALSE(store.forget(w));  // closed already: nothing of the customer's was live
        CHECK_FALSE(store.expiry(w));
    }
    clock.now -= 2000;  // were it still on disk, it would load as live now
    DedupStore store(options(dir, clock));
    CHECK_FALSE(store.expiry(w));
}
