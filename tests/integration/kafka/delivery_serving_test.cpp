// Producer::serve_deliveries_on: delivery reports served on an event loop handed in (as the
// edge's workers do), the poll thread taking them back, and the safety net that serves
// what a lost post would have left behind. Real acknowledgements from the mock cluster.
#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "kafka_test_support.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

namespace {

// One thread running what is posted to it, in order: a stand-in for an edge worker.
class Loop {
public:
    Loop() : thread_([this] { run(); }) {}
    ~Loop() { stop(); }

    bool post(std::function<void()> fn) {
        {
            std::lock_guard lock(mu_);
            if (stopped_) return false;  // refused, as a stopped edge refuses
            queue_.push_back(std::move(fn));
            ++posted_;
        }
        cv_.notify_one();
        return true;
    }
    void stop() {
        {
            std::lock_guard lock(mu_);
            stopped_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }
    std::thread::id id() const { return thread_.get_id(); }
    size_t posted() {
        std::lock_guard lock(mu_);
        return posted_;
    }

private:
    void run() {
        for (;;) {
            std::function<void()> fn;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [this] { return stopped_ || !queue_.empty(); });
                if (stopped_) return;
                fn = std::move(queue_.front());
                queue_.pop_front();
            }
            fn();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stopped_ = false;
    size_t posted_ = 0;
    std::thread thread_;  // last: starts once the rest is built
};

// What the callbacks saw: how many ran, where, and whether two ever overlapped.
struct Seen {
    std::mutex mu;
    std::map<int, int> runs;  // record → callbacks run
    std::map<std::thread::id, int> threads;
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
    int failed = 0;

    DeliveryCallback callback(int record) {
        return [this, record](const DeliveryResult& r) {
            if (inside.fetch_add(1) != 0) overlapped = true;
            std::this_thread::sleep_for(std::chrono::microseconds(20));  // widen any overlap
            {
                std::lock_guard lock(mu);
                ++runs[record];
                ++threads[std::this_thread::get_id()];
                if (!r.ok()) ++failed;
            }
            inside.fetch_sub(1);
        };
    }
    int on(std::thread::id id) {
        std::lock_guard lock(mu);
        return threads[id];
    }
    bool each_once(int from, int to) {
        std::lock_guard lock(mu);
        for (int i = from; i < to; ++i)
            if (runs[i] != 1) return false;
        return true;
    }
};

Record record(int i) { return Record{"t.serve", "k" + std::to_string(i % 7), "v" + std::to_string(i), {}}; }

// A cluster with the topic the records go to.
EmbeddedCluster& cluster_with_topic(std::optional<EmbeddedCluster>& c) {
    c.emplace();
    c->create_topic("t.serve", 3);
    return *c;
}

void serve_on(Producer& producer, Loop& loop) {
    producer.serve_deliveries_on([&loop](std::function<void()> fn) { return loop.post(std::move(fn)); });
}

}  // namespace

TEST_CASE("delivery reports are served on the loop handed in, one callback at a time", "[kafka][integration]") {
    std::optional<EmbeddedCluster> cluster;
    cluster_with_topic(cluster);
    metrics::Registry reg;
    Seen seen;
    Loop loop;
    Producer producer(settings_for(*cluster), reg);
    serve_on(producer, loop);

    constexpr int kRecords = 600;
    // From three threads at once, as the edge's workers produce.
    std::vector<std::thread> producers;
    for (int t = 0; t < 3; ++t)
        producers.emplace_back([&, t] {
            for (int i = t; i < kRecords; i += 3) producer.produce(record(i), seen.callback(i));
        });
    for (auto& t : producers) t.join();
    REQUIRE(producer.flush(20s) == 0);

    CHECK(seen.each_once(0, kRecords));
    CHECK(seen.failed == 0);
    CHECK_FALSE(seen.overlapped.load());
    // The poll thread's safety net may take a report now and then; the loop serves the rest,
    // with fewer serves than records (one serve takes every report queued by then).
    CHECK(seen.on(loop.id()) >= kRecords * 9 / 10);
    CHECK(loop.posted() >= 1);
    CHECK(loop.posted() < static_cast<size_t>(kRecords));

    SECTION("given back, the poll thread serves again") {
        producer.serve_deliveries_on_own_thread();
        const size_t posted = loop.posted();
        for (int i = kRecords; i < kRecords + 100; ++i) producer.produce(record(i), seen.callback(i));
        REQUIRE(producer.flush(20s) == 0);
        CHECK(seen.each_once(kRecords, kRecords + 100));
        CHECK(loop.posted() == posted);            // post is not called any more
        CHECK(seen.on(loop.id()) <= kRecords);     // none of the new ones ran there
        CHECK_FALSE(seen.overlapped.load());
    }

    SECTION("a local refusal reaches its callback through the loop too") {
        Record big = record(-1);
        big.value.assign(2 * 1024 * 1024, 'x');  // over message.max.bytes: refused by librdkafka itself
        std::atomic<int> calls{0};
        std::atomic<bool> refused{false};
        producer.produce(std::move(big), [&](const DeliveryResult& r) {
            refused = r.error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE;
            ++calls;
        });
        REQUIRE(wait_until([&] { return calls.load() == 1; }, 5s));
        CHECK(refused.load());
        CHECK(producer.in_flight() == 0);
    }
}

TEST_CASE("a post that loses or refuses its work loses no callback: the poll thread serves what is left",
          "[kafka][integration]") {
    std::optional<EmbeddedCluster> cluster;
    cluster_with_topic(cluster);
    metrics::Registry reg;
    Seen seen;
    std::atomic<int> posts{0};
    Producer producer(settings_for(*cluster), reg);
    const bool refuse = GENERATE(false, true);
    INFO((refuse ? "the post refuses" : "the post takes fn and loses it"));
    producer.serve_deliveries_on([&posts, refuse](std::function<void()>) {  // never runs fn
        ++posts;
        return !refuse;
    });

    for (int i = 0; i < 50; ++i) producer.produce(record(i), seen.callback(i));
    REQUIRE(producer.flush(10s) == 0);
    CHECK(seen.each_once(0, 50));
    CHECK(seen.failed == 0);
    CHECK(posts.load() >= 1);
    CHECK(seen.on(std::this_thread::get_id()) == 0);
    if (refuse) {
        // A refused post leaves nothing pending: the next report tries the loop again.
        const int before = posts.load();
        producer.produce(record(50), seen.callback(50));
        REQUIRE(producer.flush(10s) == 0);
        CHECK(posts.load() > before);
        CHECK(seen.each_once(50, 51));
    }
}

TEST_CASE("a producer destroyed while a loop serves its reports runs every callback", "[kafka][integration]") {
    std::optional<EmbeddedCluster> cluster;
    cluster_with_topic(cluster);
    metrics::Registry reg;
    Seen seen;
    Loop loop;
    {
        Producer producer(settings_for(*cluster), reg);
        serve_on(producer, loop);
        for (int i = 0; i < 200; ++i) producer.produce(record(i), seen.callback(i));
    }  // no flush first: the destructor takes the serving back and waits for every report
    // Serves posted before may still be queued on the loop: they must find nothing to do.
    std::atomic<bool> drained{false};
    loop.post([&drained] { drained = true; });  // runs after every serve queued before it
    REQUIRE(wait_until([&] { return drained.load(); }, 5s));
    loop.stop();
    CHECK(seen.each_once(0, 200));
    CHECK(seen.failed == 0);
    CHECK_FALSE(seen.overlapped.load());
}
