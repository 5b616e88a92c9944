// Ids are UUIDv7, unique and in generation order across threads; timestamps
// are RFC 3339 UTC with milliseconds.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "envelope/id.h"
#include "envelope/timestamp.h"

using namespace omnibus::envelope;
using std::chrono::milliseconds;

TEST_CASE("an id is a lowercase UUIDv7 carrying the current time") {
    const Timestamp before = now_ms();
    const std::string id = new_id();
    const Timestamp after = now_ms();
    REQUIRE(id.size() == 36);
    CHECK(id[8] == '-');
    CHECK(id[13] == '-');
    CHECK(id[14] == '7');  // version
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);  // RFC 9562 variant
    CHECK(std::all_of(id.begin(), id.end(), [](char c) { return c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
    const auto t = id_time(id);
    REQUIRE(t);
    CHECK(*t >= before);
    CHECK(*t <= after + milliseconds(5));  // the counter may carry a few ms ahead under load
    CHECK_FALSE(id_time("not-an-id"));
    CHECK_FALSE(id_time("0190a6e2-3b4c-4d5e-8f60-718293a4b5c6"));  // v4
}

TEST_CASE("ids are unique and strictly increasing in the order they are taken, across threads") {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 50000;
    // Each id is taken under a global sequence number, so the sequence order is
    // the order in which new_id() handed them out.
    std::atomic<int> seq{0};
    std::vector<std::pair<int, std::string>> all(kThreads * kPerThread);
    std::atomic<bool> go{false};
    std::atomic_flag lock = ATOMIC_FLAG_INIT;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < kPerThread; ++i) {
                while (lock.test_and_set(std::memory_order_acquire)) {}
                const int n = seq.fetch_add(1);
                std::string id = new_id();
                lock.clear(std::memory_order_release);
                all[n] = {n, std::move(id)};
            }
        });
    go = true;
    for (auto& th : threads) th.join();

    for (std::size_t i = 1; i < all.size(); ++i) REQUIRE(all[i - 1].second < all[i].second);
    std::set<std::string> unique;
    for (auto& [n, id] : all) unique.insert(id);
    CHECK(unique.size() == all.size());
}

TEST_CASE("ids taken concurrently without coordination are unique") {
    constexpr int kThreads = 4;
    constexpr int kPerThread = 100000;
    std::vector<std::vector<std::string>> per(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&per, t] {
            per[t].reserve(kPerThread);
            for (int i = 0; i < kPerThread; ++i) per[t].push_back(new_id());
        });
    for (auto& th : threads) th.join();
    std::set<std::string> unique;
    for (auto& v : per) {
        CHECK(std::is_sorted(v.begin(), v.end()));  // each thread sees its ids increase
        unique.insert(v.begin(), v.end());
    }
    CHECK(unique.size() == static_cast<std::size_t>(kThreads * kPerThread));
}

TEST_CASE("timestamps format as UTC with milliseconds") {
    CHECK(format_rfc3339(Timestamp{milliseconds{0}}) == "1970-01-01T00:00:00.000Z");
    CHECK(format_rfc3339(Timestamp{milliseconds{1714566896789}}) == "2024-05-01T12:34:56.789Z");
    CHECK(format_rfc3339(Timestamp{milliseconds{-1}}) == "1969-12-31T23:59:59.999Z");
    CHECK(format_rfc3339(Timestamp{milliseconds{951782400000}}) == "2000-02-29T00:00:00.000Z");
    // RFC 3339 has four-digit years: clamped.
    CHECK(format_rfc3339(Timestamp{milliseconds{-99999999999999}}) == "0000-01-01T00:00:00.000Z");
    CHECK(format_rfc3339(Timestamp{milliseconds{999999999999999}}) == "9999-12-31T23:59:59.999Z");
}

TEST_CASE("RFC 3339 parsing applies offsets and truncates to milliseconds") {
    const Timestamp t{milliseconds{1714566896789}};
    CHECK(parse_rfc3339("2024-05-01T12:34:56.789Z") == t);
    CHECK(parse_rfc3339("2024-05-01t12:34:56.789z") == t);
    CHECK(parse_rfc3339("2024-05-01 12:34:56.789Z") == t);
    CHECK(parse_rfc3339("2024-05-01T14:34:56.789999+02:00") == t);
    CHECK(parse_rfc3339("2024-05-01T07:04:56.789-05:30") == t);
    CHECK(parse_rfc3339("2024-05-01T12:34:56Z") == Timestamp{milliseconds{1714566896000}});
    CHECK(parse_rfc3339("2024-05-01T12:34:56.7Z") == Timestamp{milliseconds{1714566896700}});
    CHECK(parse_rfc3339("2016-12-31T23:59:60Z") == parse_rfc3339("2016-12-31T23:59:59.999Z"));
    CHECK(parse_rfc3339("2024-02-29T00:00:00Z"));
    for (const char* bad : {"", "2024-05-01", "2024-05-01T12:34:56", "2024-05-01T12:34:56+0200",
                            "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2024-05-01T24:00:00Z",
                            "2024-05-01T12:60:00Z", "2024-05-01T12:34:56.Z", "2024-05-01T12:34:56.1234567890Z",
                            "2024-05-01T12:34:56ZZ", "2024-05-01T12:34:56+24:00", "0000-01-01T00:00:00+00:01",
                            "-024-05-01T12:34:56Z", "2024-5-01T12:34:56Z"})
        CHECK_FALSE(parse_rfc3339(bad));
    for (std::int64_t ms : {0LL, 1LL, 1714566896789LL, -62167219200000LL, 253402300799999LL})
        CHECK(parse_rfc3339(format_rfc3339(Timestamp{milliseconds{ms}})) == Timestamp{milliseconds{ms}});
}
