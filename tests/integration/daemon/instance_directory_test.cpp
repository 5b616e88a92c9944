// InstanceDirectory on the mock cluster: a record left over by an instance that ended without
// its tombstone is removed once other instances took its partitions; a live one stays.
#include <catch2/catch.hpp>

#include <chrono>

#include "daemon/instance_directory.h"
#include "envelope/timestamp.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "metrics/metrics.h"
#include "support/metric_value.h"
#include "support/process.h"
#include "support/wait.h"

using namespace omnibus;
using namespace std::chrono_literals;

TEST_CASE("instance directory: a killed instance's left-over record is swept once others took its partitions",
          "[daemon][instances][integration]") {
    kafka::EmbeddedCluster cluster(1);
    cluster.create_topic("t.instances", 1);
    kafka::KafkaSettings s;
    s.brokers = cluster.bootstrap_servers();
    s.embedded = true;
    s.replication_factor = 1;
    s.message_timeout = 10s;
    s.close_timeout = 5s;
    metrics::Registry reg;
    kafka::Producer producer(s, reg);

    // What a SIGKILLed instance left (partitions 0 and 1), and a live instance's claim on 3.
    const std::int64_t long_ago = envelope::now_ms().time_since_epoch().count() - 3'600'000;
    auto put = [&](const daemon::InstanceRecord& r) {
        kafka::Record rec;
        rec.topic = "t.instances";
        rec.key = r.instance;
        rec.value = daemon::encode(r);
        rec.partition = 0;
        producer.produce(std::move(rec), nullptr);
    };
    put({"dead:7", "http://10.0.0.7:9090", {0, 1}, long_ago});
    put({"live:2", "http://10.0.0.2:9090", {3}, long_ago});
    REQUIRE(producer.flush(10s) == 0);

    daemon::InstanceDirectory dir(s, {"t.instances", "me:1", "http://127.0.0.1:9000", 4, std::chrono::minutes(10)},
                                  producer, reg);
    REQUIRE(omnibus::test::wait_until([&] { return dir.holder(0) && dir.holder(3); }, 10s));
    CHECK(dir.holder(0)->instance == "dead:7");
    // This instance takes 0 only: 1 is still the dead one's alone, so its record stays.
    dir.announce({0});
    REQUIRE(omnibus::test::wait_until([&] { return !dir.holder(0); }, 10s));  // our own claim now
    CHECK(dir.holder(1)->instance == "dead:7");
    CHECK(omnibus::test::metric_value(reg, "omnibus_instances_swept_total") == 0);
    // Then 1 too: every claim of dead:7 is ours, and it was written an hour ago.
    dir.announce({0, 1});
    REQUIRE(omnibus::test::wait_until(
        [&] { return omnibus::test::metric_value(reg, "omnibus_instances_swept_total") == 1; }, 10s));
    REQUIRE(producer.flush(10s) == 0);
    const std::string log = omnibus::test::run_capture("timeout 10 kcat -C -q -e -b " + s.brokers +
                                                       " -t t.instances -o beginning -f '%k %S\\n' 2>/dev/null");
    CHECK(log.find("dead:7 -1\n") != std::string::npos);  // its tombstone
    CHECK(log.find("live:2 -1\n") == std::string::npos);  // the live one keeps its record
    CHECK(dir.holder(3)->instance == "live:2");
    CHECK_FALSE(dir.holder(1));  // ours
}
