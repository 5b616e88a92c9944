// Producer throughput and delivery latency against the embedded cluster, with
// acks=all and idempotence, beside the same cluster's ceiling: kcat -P pushing
// the same number of records of the same size. Prints both and the ratio.
//
// usage: bench_kafka_produce [records] [value_bytes]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "log/log.h"
#include "metrics/metrics.h"

using namespace omnibus;
using Clock = std::chrono::steady_clock;

namespace {

int64_t high_watermark(const std::string& bootstrap, const std::string& topic, int partitions) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    int64_t total = 0;
    for (int p = 0; p < partitions; ++p) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            total += hi;
    }
    rd_kafka_destroy(rk);
    return total;
}

double pct(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
    return v[i];
}

}  // namespace

int main(int argc, char** argv) {
    const long records = argc > 1 ? std::atol(argv[1]) : 200000;
    const size_t value_bytes = argc > 2 ? static_cast<size_t>(std::atol(argv[2])) : 450;
    const int partitions = 6;
    log::set_level(log::Level::warn);

    kafka::EmbeddedCluster cluster(1);
    cluster.create_topic("bench.omnibus", partitions);
    cluster.create_topic("bench.kcat", partitions);

    kafka::KafkaSettings s;
    s.brokers = cluster.bootstrap_servers();
    s.embedded = true;
    metrics::Registry registry;
    std::vector<double> latencies_ms;
    latencies_ms.reserve(static_cast<size_t>(records));
    std::mutex lat_mu;
    std::atomic<long> failed{0};
    double omnibus_rate = 0;
    {
        kafka::Producer producer(s, registry);
        producer.warm_up({"bench.omnibus"}, std::chrono::seconds(5));
        std::string value(value_bytes, 'x');
        auto t0 = Clock::now();
        // Keep a bounded number in flight, as the edge does with its connections:
        // librdkafka's local queue (100,000 records) refuses the rest.
        const size_t window = 50000;
        for (long i = 0; i < records; ++i) {
            while (producer.in_flight() >= window) std::this_thread::yield();
            kafka::Record r;
            r.topic = "bench.omnibus";
            r.key = "whatsapp:1555" + std::to_string(i % 5000);
            r.value = value;
            r.headers = {{"ce_specversion", "1.0"}, {"ce_type", "com.omnibus.message.inbound"}};
            producer.produce(std::move(r), [&](const kafka::DeliveryResult& d) {
                if (!d.ok()) failed.fetch_add(1);
                // The poll thread runs every callback: no lock contention with produce().
                latencies_ms.push_back(std::chrono::duration<double, std::milli>(d.latency).count());
            });
        }
        size_t left = producer.flush(std::chrono::seconds(60));
        double secs = std::chrono::duration<double>(Clock::now() - t0).count();
        omnibus_rate = static_cast<double>(records) / secs;
        if (left) std::fprintf(stderr, "%zu records not delivered in time\n", left);
    }
    int64_t on_kafka = high_watermark(s.brokers, "bench.omnibus", partitions);

    // Ceiling: kcat -P on the same cluster with the same records.
    std::string file = "/tmp/omnibus-bench-kcat.txt";
    {
        std::ofstream out(file);
        std::string value(value_bytes, 'x');
        for (long i = 0; i < records; ++i) out << value << '\n';
    }
    auto t1 = Clock::now();
    std::string cmd = "kcat -P -b " + s.brokers +
                      " -t bench.kcat -X enable.idempotence=true -X acks=all -X linger.ms=2 -l " + file +
                      " 2>/dev/null";
    int rc = std::system(cmd.c_str());
    double kcat_secs = std::chrono::duration<double>(Clock::now() - t1).count();
    std::remove(file.c_str());
    int64_t kcat_on_kafka = high_watermark(s.brokers, "bench.kcat", partitions);
    double kcat_rate = static_cast<double>(kcat_on_kafka) / kcat_secs;

    std::printf("kafka produce (embedded cluster, acks=all, idempotent, %zu-byte values, %ld records)\n",
                value_bytes, records);
    std::printf("  omnibus Producer : %9.0f records/s  delivery p50 %.2f ms  p99 %.2f ms  failed %ld  on Kafka %lld\n",
                omnibus_rate, pct(latencies_ms, 0.50), pct(latencies_ms, 0.99), failed.load(),
                static_cast<long long>(on_kafka));
    std::printf("  kcat -P (ceiling): %9.0f records/s  on Kafka %lld%s\n", kcat_rate,
                static_cast<long long>(kcat_on_kafka), rc == 0 ? "" : "  (kcat failed)");
    std::printf("  ratio            : %.2f of the ceiling\n", kcat_rate > 0 ? omnibus_rate / kcat_rate : 0.0);
    return on_kafka == records && failed == 0 ? 0 : 1;
}
