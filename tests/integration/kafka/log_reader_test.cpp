// LogReader against the mock cluster: order and content from an offset, tombstones, catching
// up and tailing, gaps (beyond the end, below the log start), a throwing handler, stop().
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "kafka/log_reader.h"
#include "kafka_test_support.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

namespace {

using Clock = std::chrono::steady_clock;

Record keyed(const std::string& topic, int i) {
    return Record{topic,
                  "key-" + std::to_string(i),
                  "value-" + std::to_string(i),
                  {{"seq", std::to_string(i)}, {"kind", "log-reader-test"}}};
}

// Produces records[i] for i in [from, to) and waits for every acknowledgement.
void produce_range(const KafkaSettings& s, metrics::Registry& reg, const std::string& topic, int from, int to) {
    Deliveries d;
    {
        Producer producer(s, reg);
        REQUIRE(producer.warm_up({topic}, 5s));  // else a fresh producer may wait ~1 s for the leader
        for (int i = from; i < to; ++i) producer.produce(keyed(topic, i), d.callback());
        REQUIRE(producer.flush(20s) == 0);
    }
    REQUIRE(d.ok() == static_cast<size_t>(to - from));
}

struct Watermarks {
    int64_t low = -1;
    int64_t high = -1;
};

Watermarks watermarks(const KafkaSettings& s, const std::string& topic) {
    detail::ClientContext ctx;
    ctx.role = "test";
    detail::HandlePtr rk = detail::new_handle(RD_KAFKA_CONSUMER, detail::make_conf(admin_properties(s)), ctx);
    Watermarks w;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), 0, &w.low, &w.high, 5000);
    if (err) throw std::runtime_error(std::string("watermarks: ") + rd_kafka_err2str(err));
    return w;
}

// What a LogReader handed out, as its owner sees it (handlers run on the reader thread).
class Sink {
public:
    LogReaderOptions options(const std::string& topic, int64_t start) {
        LogReaderOptions o;
        o.topic = topic;
        o.start_offset = start;
        o.on_records = [this](std::vector<LogRecord>& batch) {
            std::lock_guard lock(mu_);
            batches_.push_back(batch.size());
            for (auto& r : batch) records_.push_back(std::move(r));
        };
        o.on_gap = [this](int64_t requested, int64_t log_start) {
            std::lock_guard lock(mu_);
            gaps_.push_back({requested, log_start, records_.size()});
        };
        return o;
    }
    size_t size() const {
        std::lock_guard lock(mu_);
        return records_.size();
    }
    std::vector<LogRecord> records() const {
        std::lock_guard lock(mu_);
        return records_;
    }
    std::vector<size_t> batches() const {
        std::lock_guard lock(mu_);
        return batches_;
    }
    struct Gap {
        int64_t requested;
        int64_t log_start;
        size_t records_before;  // records handed out before on_gap ran
    };
    std::vector<Gap> gaps() const {
        std::lock_guard lock(mu_);
        return gaps_;
    }

private:
    mutable std::mutex mu_;
    std::vector<LogRecord> records_;
    std::vector<size_t> batches_;
    std::vector<Gap> gaps_;
};

// Offsets from..to-1, each once, in order, with the content keyed() gave them.
void check_range(const std::vector<LogRecord>& got, const std::string& topic, int from, int to) {
    REQUIRE(got.size() == static_cast<size_t>(to - from));
    for (int i = from; i < to; ++i) {
        const LogRecord& r = got[static_cast<size_t>(i - from)];
        INFO("offset " << i);
        REQUIRE(r.offset == i);
        const Record expected = keyed(topic, i);
        CHECK(r.record.topic == topic);
        CHECK(r.record.key == expected.key);
        CHECK(r.record.value == expected.value);
        CHECK(r.record.headers == expected.headers);
        CHECK_FALSE(r.tombstone);
        CHECK(r.timestamp_ms > 0);
    }
}

}  // namespace

TEST_CASE("log reader hands out every record from offset 0 in order with keys values and headers",
          "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.log", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_range(s, reg, "t.log", 0, 1000);

    Sink sink;
    LogReader reader(s, reg, sink.options("t.log", 0));
    // position() moves once on_records returned.
    REQUIRE(wait_until([&] { return reader.position() == 1000; }, 20s));
    check_range(sink.records(), "t.log", 0, 1000);
    CHECK_FALSE(reader.failed());
    for (size_t n : sink.batches()) {
        CHECK(n >= 1);
        CHECK(n <= 500);
    }
    CHECK(sink.gaps().empty());
    std::string text = reg.render();
    CHECK(text.find("omnibus_kafka_log_reader_records_total{topic=\"t.log\",partition=\"0\"} 1000") !=
          std::string::npos);
    CHECK(text.find("omnibus_kafka_log_reader_position{topic=\"t.log\",partition=\"0\"} 1000") != std::string::npos);
}

TEST_CASE("log reader starts at the offset it is given", "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.log", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_range(s, reg, "t.log", 0, 1000);

    Sink sink;
    LogReader reader(s, reg, sink.options("t.log", 600));
    int64_t early = reader.position();  // the start offset until the first batch was handed out
    CHECK((early == 600 || early > 600));
    REQUIRE(reader.wait_caught_up(20s));
    check_range(sink.records(), "t.log", 600, 1000);
    CHECK(reader.position() == 1000);
    CHECK(sink.gaps().empty());
}

TEST_CASE("log reader marks records with a null value as tombstones", "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.compact", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    {
        Deliveries d;
        Producer producer(s, reg);
        REQUIRE(producer.warm_up({"t.compact"}, 5s));
        producer.produce(Record{"t.compact", "a", "first", {}}, d.callback());
        Record gone{"t.compact", "a", "ignored", {{"why", "erased"}}};
        gone.tombstone = true;  // null value
        producer.produce(std::move(gone), d.callback());
        producer.produce(Record{"t.compact", "b", "", {}}, d.callback());  // empty, not null
        Record bare{"t.compact", "", "", {}};
        bare.tombstone = true;  // null key and null value
        producer.produce(std::move(bare), d.callback());
        REQUIRE(producer.flush(10s) == 0);
        REQUIRE(d.ok() == 4);
    }

    Sink sink;
    LogReader reader(s, reg, sink.options("t.compact", LogReader::kBeginning));
    REQUIRE(reader.wait_caught_up(10s));
    std::vector<LogRecord> got = sink.records();
    REQUIRE(got.size() == 4);
    CHECK(got[0].offset == 0);
    CHECK(got[0].record.value == "first");
    CHECK_FALSE(got[0].tombstone);

    CHECK(got[1].offset == 1);
    CHECK(got[1].record.key == "a");
    CHECK(got[1].tombstone);
    CHECK(got[1].record.tombstone);
    CHECK(got[1].record.value.empty());
    CHECK(got[1].record.headers == std::vector<Header>{{"why", "erased"}});

    CHECK(got[2].record.key == "b");
    CHECK(got[2].record.value.empty());
    CHECK_FALSE(got[2].tombstone);
    CHECK_FALSE(got[2].record.tombstone);

    CHECK(got[3].record.key.empty());
    CHECK(got[3].tombstone);
    CHECK(reader.position() == 4);
}

TEST_CASE("log reader: wait_caught_up returns once everything is handed out and the reader tails the log",
          "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.log", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_range(s, reg, "t.log", 0, 1000);

    Sink sink;
    LogReader reader(s, reg, sink.options("t.log", 0));
    REQUIRE(reader.wait_caught_up(20s));
    CHECK(sink.size() == 1000);  // handed out and on_records returned: no waiting here
    CHECK(reader.position() == 1000);

    // Records produced later keep arriving.
    produce_range(s, reg, "t.log", 1000, 1050);
    REQUIRE(reader.wait_caught_up(10s));
    CHECK(sink.size() == 1050);
    auto t0 = Clock::now();
    produce_range(s, reg, "t.log", 1050, 1051);
    REQUIRE(wait_until([&] { return sink.size() == 1051; }, 10s));
    // One record's way from the producer to the handler (mock: fetch.wait.max.ms is 20 ms).
    CHECK(Clock::now() - t0 < 2s);
    check_range(sink.records(), "t.log", 0, 1051);
    CHECK(reader.wait_caught_up(10s));  // caught up already: at once
}

TEST_CASE("log reader on an empty log is caught up at once and hands out what comes",
          "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.empty", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;

    Sink sink;
    LogReader reader(s, reg, sink.options("t.empty", LogReader::kBeginning));
    REQUIRE(reader.wait_caught_up(10s));
    CHECK(sink.size() == 0);
    produce_range(s, reg, "t.empty", 0, 3);
    REQUIRE(reader.wait_caught_up(10s));
    check_range(sink.records(), "t.empty", 0, 3);
    CHECK(reader.position() == 3);
}

TEST_CASE("log reader stop() returns promptly while idle", "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.log", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_range(s, reg, "t.log", 0, 10);

    Sink sink;
    LogReader reader(s, reg, sink.options("t.log", 0));
    REQUIRE(reader.wait_caught_up(10s));
    std::this_thread::sleep_for(300ms);  // idle: the reader sits in its poll, the fetcher in a long-poll

    auto t0 = Clock::now();
    CHECK(reader.stop());
    auto took = Clock::now() - t0;
    CHECK(took < 500ms);
    t0 = Clock::now();
    CHECK(reader.stop());  // idempotent
    CHECK(Clock::now() - t0 < 50ms);
    CHECK_FALSE(reader.wait_caught_up(1s));  // stopped: false, at once
    CHECK(Clock::now() - t0 < 500ms);
    CHECK(reader.position() == 10);
}

TEST_CASE("log reader: a start offset beyond the end is a gap and reading goes on from the log start",
          "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.log", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_range(s, reg, "t.log", 0, 10);

    Sink sink;
    LogReader reader(s, reg, sink.options("t.log", 5000));
    CHECK_FALSE(reader.wait_caught_up(100ms));  // 5000 is not on the log: not caught up before the gap is handled
    REQUIRE(reader.wait_caught_up(10s));
    std::vector<Sink::Gap> gaps = sink.gaps();
    REQUIRE(gaps.size() == 1);
    CHECK(gaps[0].requested == 5000);
    CHECK(gaps[0].log_start == 0);
    CHECK(gaps[0].records_before == 0);  // on_gap before the records from the log start
    check_range(sink.records(), "t.log", 0, 10);
    CHECK(reader.position() == 10);
    CHECK(reg.render().find("omnibus_kafka_log_reader_gaps_total{topic=\"t.log\",partition=\"0\"} 1") !=
          std::string::npos);

    // And it tails from there.
    produce_range(s, reg, "t.log", 10, 12);
    REQUIRE(reader.wait_caught_up(10s));
    check_range(sink.records(), "t.log", 0, 12);
}

TEST_CASE("log reader: a start offset below the log start (retention) is a gap", "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.big", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    // The mock keeps about 5 MB per partition: 8 MB of records moves the log start.
    {
        Deliveries d;
        Producer producer(s, reg);
        REQUIRE(producer.warm_up({"t.big"}, 5s));
        for (int i = 0; i < 80; ++i)
            producer.produce(Record{"t.big", "k" + std::to_string(i), std::string(100 * 1024, 'x'), {}}, d.callback());
        REQUIRE(producer.flush(20s) == 0);
        REQUIRE(d.ok() == 80);
    }
    Watermarks w = watermarks(s, "t.big");
    REQUIRE(w.high == 80);
    REQUIRE(w.low > 0);

    SECTION("from offset 0") {
        Sink sink;
        LogReader reader(s, reg, sink.options("t.big", 0));
        REQUIRE(reader.wait_caught_up(10s));
        std::vector<Sink::Gap> gaps = sink.gaps();
        REQUIRE(gaps.size() == 1);
        CHECK(gaps[0].requested == 0);
        CHECK(gaps[0].log_start == w.low);
        CHECK(gaps[0].records_before == 0);
        std::vector<LogRecord> got = sink.records();
        REQUIRE(got.size() == static_cast<size_t>(80 - w.low));
        for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].offset == w.low + static_cast<int64_t>(i));
    }
    SECTION("from kBeginning: no gap") {
        Sink sink;
        LogReader reader(s, reg, sink.options("t.big", LogReader::kBeginning));
        int64_t early = reader.position();  // kBeginning until the log start is known
        CHECK((early == LogReader::kBeginning || early >= w.low));
        REQUIRE(reader.wait_caught_up(10s));
        CHECK(sink.gaps().empty());
        std::vector<LogRecord> got = sink.records();
        REQUIRE(got.size() == static_cast<size_t>(80 - w.low));
        CHECK(got.front().offset == w.low);
        CHECK(reader.position() == 80);
    }
}

TEST_CASE("log reader: a throwing handler stops the reader without skipping", "[kafka][integration][log_reader]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.log", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_range(s, reg, "t.log", 0, 100);

    std::mutex mu;
    std::vector<int64_t> applied;  // offsets of batches on_records returned from
    std::atomic<int> calls{0};
    std::atomic<int64_t> failed_at{-1};
    LogReaderOptions o;
    o.topic = "t.log";
    o.start_offset = 0;
    o.on_records = [&](std::vector<LogRecord>& batch) {
        ++calls;
        bool poison = std::any_of(batch.begin(), batch.end(), [](const LogRecord& r) { return r.offset == 50; });
        if (poison) {
            failed_at = batch.front().offset;
            throw std::runtime_error("cannot apply");
        }
        std::lock_guard lock(mu);
        for (const auto& r : batch) applied.push_back(r.offset);
    };
    LogReader reader(s, reg, o);
    REQUIRE(wait_until([&] { return reader.failed(); }, 10s));
    CHECK(reader.position() == failed_at.load());  // stays at the batch that threw
    CHECK_FALSE(reader.wait_caught_up(2s));

    int calls_then = calls.load();
    produce_range(s, reg, "t.log", 100, 110);
    std::this_thread::sleep_for(300ms);
    CHECK(calls.load() == calls_then);  // nothing after the failure
    CHECK(reader.position() == failed_at.load());
    {
        std::lock_guard lock(mu);
        REQUIRE(applied.size() == static_cast<size_t>(failed_at.load()));  // everything before, nothing skipped
        for (size_t i = 0; i < applied.size(); ++i) CHECK(applied[i] == static_cast<int64_t>(i));
    }
    CHECK(reg.render().find("omnibus_kafka_log_reader_handler_errors_total{topic=\"t.log\",partition=\"0\"} 1") !=
          std::string::npos);
    CHECK(reader.stop());
}

TEST_CASE("log reader rejects incomplete options", "[kafka][integration][log_reader]") {
    KafkaSettings s;
    s.brokers = "127.0.0.1:1";
    metrics::Registry reg;
    auto with = [](auto change) {
        LogReaderOptions o;
        o.topic = "t";
        o.on_records = [](std::vector<LogRecord>&) {};
        change(o);
        return o;
    };
    CHECK_THROWS_AS(LogReader(s, reg, with([](LogReaderOptions& o) { o.topic.clear(); })), std::invalid_argument);
    CHECK_THROWS_AS(LogReader(s, reg, with([](LogReaderOptions& o) { o.on_records = nullptr; })),
                    std::invalid_argument);
    CHECK_THROWS_AS(LogReader(s, reg, with([](LogReaderOptions& o) { o.partition = -1; })), std::invalid_argument);
    CHECK_THROWS_AS(LogReader(s, reg, with([](LogReaderOptions& o) { o.start_offset = -1; })), std::invalid_argument);
    CHECK_THROWS_AS(LogReader(s, reg, with([](LogReaderOptions& o) { o.max_batch = 0; })), std::invalid_argument);
    s.client["group.id"] = Secret("mine");
    CHECK_THROWS_AS(LogReader(s, reg, with([](LogReaderOptions&) {})), ConfigError);
}
