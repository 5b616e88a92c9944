// Producer → mock cluster over loopback TCP → Consumer (group) and kcat: content, keys,
// headers and per-partition order survive the round trip.
#include <catch2/catch.hpp>

#include <map>

#include "kafka_test_support.h"
#include "metrics/metrics.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

namespace {

constexpr int kRecords = 300;
constexpr int kKeys = 10;

Record sample(const std::string& topic, int i) {
    return Record{topic,
                  "customer-" + std::to_string(i % kKeys),
                  "{\"seq\":" + std::to_string(i) + "}",
                  {{"ce_id", "id-" + std::to_string(i)}, {"ce_type", "omnibus.test"}, {"content-type", "application/json"}}};
}

int seq_of(const std::string& value) { return std::stoi(value.substr(7)); }

// Produces kRecords records and waits for every acknowledgement; result i belongs to record i.
std::vector<DeliveryResult> produce_sample(const KafkaSettings& s, metrics::Registry& reg, const std::string& topic) {
    std::vector<DeliveryResult> acks(kRecords);  // each slot written once, by the poll thread
    {
        Producer producer(s, reg);
        for (int i = 0; i < kRecords; ++i)
            producer.produce(sample(topic, i), [&acks, i](const DeliveryResult& r) { acks[static_cast<size_t>(i)] = r; });
        REQUIRE(producer.flush(20s) == 0);
    }  // joins the poll thread: its writes are visible here
    for (const auto& a : acks) REQUIRE(a.ok());
    return acks;
}

}  // namespace

TEST_CASE("records produced are consumed by a group member with keys, headers and order", "[kafka][integration]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.orders", 3);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;

    std::vector<DeliveryResult> acks = produce_sample(s, reg, "t.orders");
    std::map<std::string, int32_t> partition_of_key;
    for (int i = 0; i < kRecords; ++i) {
        const auto& a = acks[static_cast<size_t>(i)];
        CHECK(a.topic == "t.orders");
        CHECK(a.offset >= 0);
        CHECK(a.latency > std::chrono::nanoseconds(0));
        std::string key = "customer-" + std::to_string(i % kKeys);
        auto [it, fresh] = partition_of_key.emplace(key, a.partition);
        CHECK(it->second == a.partition);  // one key, one partition
    }
    std::string text = reg.render();
    CHECK(text.find("omnibus_kafka_produced_total{topic=\"t.orders\"} 300") != std::string::npos);
    CHECK(text.find("omnibus_kafka_delivery_seconds_count{topic=\"t.orders\"} 300") != std::string::npos);
    CHECK(text.find("omnibus_kafka_producer_queue_depth 0") != std::string::npos);  // producer gone: reads 0

    Collected got;
    std::vector<TopicPartition> assigned_before_first_record;
    std::atomic<bool> any_record{false};
    ConsumerOptions o;
    o.group_id = "g.orders";
    o.topics = {"t.orders"};
    o.on_assigned = [&](const std::vector<TopicPartition>& parts) {
        if (!any_record) assigned_before_first_record = parts;
    };
    o.handler = [&](const ConsumedRecord& r) {
        any_record = true;
        got.add(r);
        return Disposition::done;
    };
    Consumer consumer(s, o, reg);
    REQUIRE(wait_until([&] { return got.size() >= static_cast<size_t>(kRecords); }, 20s));
    CHECK(consumer.has_assignment());
    CHECK(consumer.assignment().size() == 3);
    CHECK(assigned_before_first_record.size() == 3);
    consumer.stop();

    std::vector<ConsumedRecord> records = got.all();
    REQUIRE(records.size() == static_cast<size_t>(kRecords));
    std::map<int32_t, int64_t> last_offset;
    std::map<std::string, int> last_seq;
    for (const auto& r : records) {
        int seq = seq_of(r.record.value);
        INFO("seq " << seq);
        const Record expected = sample("t.orders", seq);
        CHECK(r.record.topic == "t.orders");
        CHECK(r.record.key == expected.key);
        CHECK(r.record.headers == expected.headers);
        CHECK(r.partition == acks[static_cast<size_t>(seq)].partition);
        CHECK(r.offset == acks[static_cast<size_t>(seq)].offset);
        CHECK(r.timestamp_ms > 0);
        // Order: offsets rise within a partition, and so does each key's sequence.
        auto off = last_offset.find(r.partition);
        if (off != last_offset.end()) CHECK(r.offset > off->second);
        last_offset[r.partition] = r.offset;
        auto ks = last_seq.find(r.record.key);
        if (ks != last_seq.end()) CHECK(seq > ks->second);
        last_seq[r.record.key] = seq;
    }
}

TEST_CASE("kcat reads what the Producer wrote, headers included", "[kafka][integration][kcat]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.kcat", 3);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    produce_sample(s, reg, "t.kcat");

    std::string out = run("timeout 20 kcat -C -q -b " + cluster.bootstrap_servers() +
                          " -t t.kcat -o beginning -e -f '%p\\t%o\\t%k\\t%s\\t%h\\n' 2>/dev/null");
    std::vector<std::string> lines = split(out, '\n');
    if (!lines.empty() && lines.back().empty()) lines.pop_back();
    REQUIRE(lines.size() == static_cast<size_t>(kRecords));
    std::vector<bool> seen(kRecords, false);
    for (const auto& line : lines) {
        INFO(line);
        std::vector<std::string> f = split(line, '\t');
        REQUIRE(f.size() == 5);
        int seq = seq_of(f[3]);
        REQUIRE(seq >= 0);
        REQUIRE(seq < kRecords);
        seen[static_cast<size_t>(seq)] = true;
        CHECK(f[2] == "customer-" + std::to_string(seq % kKeys));
        CHECK(f[4] == "ce_id=id-" + std::to_string(seq) + ",ce_type=omnibus.test,content-type=application/json");
    }
    CHECK(std::count(seen.begin(), seen.end(), true) == kRecords);
}

TEST_CASE("after warm_up the first record does not wait for librdkafka's topic scan", "[kafka][integration]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.warm", 3);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    Producer producer(s, reg);
    REQUIRE(producer.warm_up({"t.warm"}, 5s));
    Deliveries d;
    producer.produce(Record{"t.warm", "k", "v", {}}, d.callback());
    REQUIRE(producer.flush(5s) == 0);
    REQUIRE(d.ok() == 1);
    // Without warm_up this is ~1 s: the lazily connecting producer finds the topic's leader
    // only at its periodic topic scan.
    CHECK(d.all()[0].latency < 500ms);
}

TEST_CASE("a tombstone record has a null value and an empty value stays empty", "[kafka][integration][kcat]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.tomb", 1);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    {
        Producer producer(s, reg);
        Deliveries d;
        Record empty{"t.tomb", "k1", "", {}};
        Record tomb{"t.tomb", "k2", "ignored", {}};
        tomb.tombstone = true;
        producer.produce(std::move(empty), d.callback());
        producer.produce(std::move(tomb), d.callback());
        REQUIRE(producer.flush(10s) == 0);
        CHECK(d.ok() == 2);
    }
    std::string out = run("timeout 20 kcat -C -q -Z -b " + cluster.bootstrap_servers() +
                          " -t t.tomb -o beginning -e -f '%k=%S|' 2>/dev/null");
    CHECK(out == "k1=0|k2=-1|");  // %S: the value's length, -1 for null
}

TEST_CASE("a record with a partition goes there whatever its key hashes to", "[kafka][integration][kcat]") {
    EmbeddedCluster cluster;
    cluster.create_topic("t.pinned", 4);
    KafkaSettings s = settings_for(cluster);
    metrics::Registry reg;
    Deliveries d;
    {
        Producer producer(s, reg);
        for (int p = 0; p < 4; ++p)
            for (int i = 0; i < 5; ++i) {
                Record r{"t.pinned", "same-key", std::to_string(p), {}};
                r.partition = p;
                producer.produce(std::move(r), d.callback());
            }
        Record bad{"t.pinned", "k", "v", {}};
        bad.partition = 9;  // no such partition: refused, reported through the callback
        producer.produce(std::move(bad), d.callback());
        REQUIRE(producer.flush(10s) == 0);
    }
    REQUIRE(d.size() == 21);
    CHECK(d.ok() == 20);
    std::map<int32_t, int> per_partition;
    for (const auto& r : d.all())
        if (r.ok()) ++per_partition[r.partition];
    CHECK(per_partition == std::map<int32_t, int>{{0, 5}, {1, 5}, {2, 5}, {3, 5}});
    std::string out = run("timeout 20 kcat -C -q -b " + cluster.bootstrap_servers() +
                          " -t t.pinned -p 2 -o beginning -e -f '%s' 2>/dev/null");
    CHECK(out == "22222");
}
