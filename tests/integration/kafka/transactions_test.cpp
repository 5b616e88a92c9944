// The consumer's transactional mode with a transactional Producer on the mock cluster:
// consume → produce → commit with the offsets; an abortable error injected into the
// transaction protocol (AddPartitionsToTxn) aborts it and every partition is handed out again
// from its last commit; a fencing error stops the consumer.
//
// librdkafka 2.0.2's mock answers the transactional requests but neither hides aborted records
// from read_committed readers nor stores offsets sent with a transaction (docs/pipeline.md):
// these tests therefore check what the consumer and producer do (what is handed out again,
// the outcome of each transaction, the hooks), not what a real cluster would show readers.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "kafka_test_support.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kPartitions = 3;
constexpr int16_t kAddPartitionsToTxn = 24;  // the Kafka protocol's API keys
constexpr int16_t kAddOffsetsToTxn = 25;

// The handler of a consume-transform-produce stage: each input record becomes one output
// record (same key, value "out-<value>"), produced with the transaction; the input is done
// once the output was acknowledged, abandoned when it failed.
class Stage {
public:
    explicit Stage(Producer& txn) : txn_(txn) {}

    AsyncRecordHandler handler() {
        return [this](const ConsumedRecord& r, Completion c) {
            {
                std::lock_guard lock(mu_);
                handed_.push_back({r.partition, r.offset, aborts_});
            }
            auto done = std::make_shared<Completion>(std::move(c));
            txn_.produce(Record{"t.out", r.record.key, "out-" + r.record.value, {}},
                         [this, done, p = r.partition, o = r.offset](const DeliveryResult& d) {
                             if (d.ok()) {
                                 std::lock_guard lock(mu_);
                                 done_.insert({p, o});
                                 if (aborts_ > 0) done_after_abort_.insert({p, o});
                             }
                             done->settle(d.ok());
                         });
        };
    }
    PartitionsHook on_aborted() {
        return [this](const std::vector<TopicPartition>& parts) {
            std::lock_guard lock(mu_);
            ++aborts_;
            aborted_with_.push_back(parts.size());
        };
    }

    struct Handed {
        int32_t partition;
        int64_t offset;
        int aborts_before;  // how many rollbacks had run when it was handed out
    };
    std::vector<Handed> handed() const {
        std::lock_guard lock(mu_);
        return handed_;
    }
    size_t done_count() const {
        std::lock_guard lock(mu_);
        return done_.size();
    }
    // Done since the first rollback (inputs of the aborted transaction, redone).
    size_t done_after_abort() const {
        std::lock_guard lock(mu_);
        return done_after_abort_.size();
    }
    int aborts() const {
        std::lock_guard lock(mu_);
        return aborts_;
    }
    std::vector<size_t> aborted_with() const {
        std::lock_guard lock(mu_);
        return aborted_with_;
    }

private:
    Producer& txn_;
    mutable std::mutex mu_;
    std::vector<Handed> handed_;
    std::set<std::pair<int32_t, int64_t>> done_;
    std::set<std::pair<int32_t, int64_t>> done_after_abort_;
    int aborts_ = 0;
    std::vector<size_t> aborted_with_;
};

uint64_t transactions(metrics::Registry& reg, const char* outcome) {
    return reg.counter("omnibus_kafka_transactions_total", "", {{"outcome", outcome}}).value();
}

// Once every record handed out is done: waits until no commit happened for a second (the
// consumer commits only when records were handed out since the last commit, 50 ms after the
// first of them; one commit takes the mock up to a few hundred milliseconds).
void settle_commits(metrics::Registry& reg) {
    REQUIRE(wait_until([&] { return transactions(reg, "committed") >= 1; }, 5s));
    for (uint64_t before = 0; before != transactions(reg, "committed");) {
        before = transactions(reg, "committed");
        std::this_thread::sleep_for(1s);
    }
}

// Produces records "first".."first+n-1" to t.in, spread over the partitions by key.
void produce_inputs(const KafkaSettings& s, metrics::Registry& reg, int first, int n) {
    Deliveries d;
    Producer p(s, reg);
    for (int i = first; i < first + n; ++i)
        p.produce(Record{"t.in", "key-" + std::to_string(i), std::to_string(i), {}}, d.callback());
    REQUIRE(p.flush(15s) == 0);
    REQUIRE(d.ok() == static_cast<size_t>(n));
}

// The values kcat reads from t.out ("out-<i>"), with how often each was read.
std::map<std::string, int> outputs(const EmbeddedCluster& cluster) {
    std::string out = run("timeout 20 kcat -C -q -b " + cluster.bootstrap_servers() +
                          " -t t.out -o beginning -e -f '%s\\n' 2>/dev/null");
    std::map<std::string, int> seen;
    for (const auto& line : split(out, '\n'))
        if (!line.empty()) ++seen[line];
    return seen;
}

struct Setup {
    EmbeddedCluster cluster;
    KafkaSettings s;
    metrics::Registry reg;
    Setup() {
        cluster.create_topic("t.in", kPartitions);
        cluster.create_topic("t.out", kPartitions);
        s = settings_for(cluster);
        s.close_timeout = 3s;
    }
    ConsumerOptions options(Stage& stage, Producer& txn) {
        ConsumerOptions o;
        o.group_id = "g.txn";
        o.topics = {"t.in"};
        o.async_handler = stage.handler();
        o.on_aborted = stage.on_aborted();
        o.transactional_producer = &txn;
        o.transaction_interval = 50ms;
        o.retry_backoff = 50ms;
        return o;
    }
};

}  // namespace

TEST_CASE("Transactional consumer: outputs and offsets are committed together", "[kafka][integration][transactions]") {
    Setup t;
    Producer txn(t.s, t.reg, {{"client", "txn"}}, "omnibus.test.txn-1");
    REQUIRE(txn.init_transactions(10s).empty());
    Stage stage(txn);
    produce_inputs(t.s, t.reg, 0, 300);
    {
        Consumer consumer(t.s, t.options(stage, txn), t.reg);
        REQUIRE(wait_until([&] { return stage.done_count() == 300; }, 30s));
        // Committed by the interval, not only at the close.
        REQUIRE(wait_until([&] { return transactions(t.reg, "committed") >= 1 && !consumer.fatal(); }, 5s));
        CHECK(consumer.in_flight() == 0);
    }
    CHECK(transactions(t.reg, "aborted") == 0);
    CHECK(stage.aborts() == 0);
    CHECK(stage.handed().size() == 300);  // nothing handed out twice
    std::map<std::string, int> seen = outputs(t.cluster);
    CHECK(seen.size() == 300);
    for (int i = 0; i < 300; ++i) {
        INFO("input " << i);
        CHECK(seen["out-" + std::to_string(i)] == 1);
    }
}

TEST_CASE("Transactional consumer: an abortable error rolls every partition back to its last commit",
          "[kafka][integration][transactions]") {
    Setup t;
    Producer txn(t.s, t.reg, {{"client", "txn"}}, "omnibus.test.txn-2");
    REQUIRE(txn.init_transactions(10s).empty());
    Stage stage(txn);
    produce_inputs(t.s, t.reg, 0, 150);
    Consumer consumer(t.s, t.options(stage, txn), t.reg);
    REQUIRE(wait_until([&] { return stage.done_count() == 150; }, 30s));
    // The first 150 are committed: the next transaction starts with nothing in it.
    settle_commits(t.reg);
    std::map<int32_t, int64_t> committed;  // per partition: the offset after the first 150
    for (const auto& h : stage.handed()) committed[h.partition] = std::max(committed[h.partition], h.offset + 1);

    // The next transaction is refused where librdkafka makes it an abortable error: while its
    // records are produced (AddPartitionsToTxn), or in the commit (AddOffsetsToTxn). The
    // transaction with the next 150 records' outputs is aborted.
    auto [api, error] = GENERATE(table<int16_t, rd_kafka_resp_err_t>({
        {kAddPartitionsToTxn, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED},
        {kAddOffsetsToTxn, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED},
    }));
    INFO("api key " << api);
    t.cluster.command([api = api, error = error](rd_kafka_mock_cluster_t* m) {
        rd_kafka_mock_push_request_errors(m, api, 1, error);
    });
    produce_inputs(t.s, t.reg, 150, 150);
    REQUIRE(wait_until([&] { return stage.aborts() >= 1 && stage.done_after_abort() == 150; }, 30s));
    REQUIRE(wait_until([&] { return consumer.in_flight() == 0; }, 5s));

    CHECK(transactions(t.reg, "aborted") >= 1);
    CHECK_FALSE(consumer.fatal());
    // on_aborted saw every assigned partition.
    for (size_t n : stage.aborted_with()) CHECK(n == static_cast<size_t>(kPartitions));
    // After the rollback each partition starts again exactly where the last commit left it:
    // none of the committed 150 comes again, every one of the next 150 does.
    std::map<int32_t, int64_t> first_after;
    std::set<std::pair<int32_t, int64_t>> before, after;
    for (const auto& h : stage.handed()) {
        if (h.aborts_before == 0) {
            before.insert({h.partition, h.offset});
            continue;
        }
        after.insert({h.partition, h.offset});
        auto [it, fresh] = first_after.emplace(h.partition, h.offset);
        if (!fresh) it->second = std::min(it->second, h.offset);
    }
    for (const auto& [p, offset] : first_after) {
        INFO("partition " << p);
        CHECK(offset == committed[p]);
    }
    CHECK(after.size() == 150);
    for (const auto& po : after) CHECK(po.second >= committed[po.first]);
    // The 150 before the abort were each handed out once.
    size_t handed_before = 0;
    for (const auto& h : stage.handed()) handed_before += h.aborts_before == 0 && h.offset < committed[h.partition];
    CHECK(handed_before == 150);
    // Every input has an output (the mock also shows the aborted ones: it does not hide them).
    std::map<std::string, int> seen = outputs(t.cluster);
    for (int i = 0; i < 300; ++i) {
        INFO("input " << i);
        CHECK(seen["out-" + std::to_string(i)] >= 1);
    }
}

TEST_CASE("Transactional consumer: a fenced producer stops the consumer", "[kafka][integration][transactions]") {
    Setup t;
    Producer txn(t.s, t.reg, {{"client", "txn"}}, "omnibus.test.txn-3");
    REQUIRE(txn.init_transactions(10s).empty());
    Stage stage(txn);
    produce_inputs(t.s, t.reg, 0, 30);
    Consumer consumer(t.s, t.options(stage, txn), t.reg);
    REQUIRE(wait_until([&] { return stage.done_count() == 30; }, 30s));
    settle_commits(t.reg);

    t.cluster.command([](rd_kafka_mock_cluster_t* m) {
        rd_kafka_mock_push_request_errors(m, kAddPartitionsToTxn, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    });
    produce_inputs(t.s, t.reg, 30, 30);
    REQUIRE(wait_until([&] { return consumer.fatal(); }, 30s));
    CHECK(txn.fatal());
    const size_t handed = stage.handed().size();
    std::this_thread::sleep_for(500ms);
    CHECK(stage.handed().size() == handed);  // nothing more is handed out
    CHECK(stage.done_count() < 60);
}

TEST_CASE("Transactional consumer: the interval's commit waits for slow work instead of aborting",
          "[kafka][integration][transactions]") {
    Setup t;  // kafka.close_timeout 3 s, kafka.message_timeout 10 s
    Producer txn(t.s, t.reg, {{"client", "txn"}}, "omnibus.test.txn-4");
    REQUIRE(txn.init_transactions(10s).empty());
    // Work that takes 4 s (longer than the close timeout, within the message timeout): the
    // handler keeps the Completions and a helper thread completes them later.
    std::mutex mu;
    std::vector<std::pair<Clock::time_point, Completion>> held;
    std::atomic<int> done{0};
    ConsumerOptions o;
    o.group_id = "g.txn.slow";
    o.topics = {"t.in"};
    o.transactional_producer = &txn;
    o.transaction_interval = 50ms;
    o.on_aborted = [](const std::vector<TopicPartition>&) { FAIL_CHECK("no transaction may be aborted"); };
    o.async_handler = [&](const ConsumedRecord& r, Completion c) {
        txn.produce(Record{"t.out", r.record.key, "out-" + r.record.value, {}}, [](const DeliveryResult&) {});
        std::lock_guard lock(mu);
        held.emplace_back(Clock::now() + 4s, std::move(c));
    };
    std::atomic<bool> stop{false};
    std::thread finisher([&] {
        while (!stop) {
            std::vector<Completion> due;
            {
                std::lock_guard lock(mu);
                for (auto it = held.begin(); it != held.end();) {
                    if (it->first > Clock::now()) {
                        ++it;
                        continue;
                    }
                    due.push_back(std::move(it->second));
                    it = held.erase(it);
                }
            }
            for (auto& c : due) {
                c.done();
                ++done;
            }
            std::this_thread::sleep_for(20ms);
        }
    });
    produce_inputs(t.s, t.reg, 0, 20);
    {
        Consumer consumer(t.s, std::move(o), t.reg);
        REQUIRE(wait_until([&] { return done.load() == 20; }, 30s));
        REQUIRE(wait_until([&] { return transactions(t.reg, "committed") >= 1; }, 10s));
        CHECK_FALSE(consumer.fatal());
    }
    stop = true;
    finisher.join();
    CHECK(transactions(t.reg, "aborted") == 0);
}
