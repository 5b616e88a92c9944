// ensure_topics against the embedded cluster and against nothing, the mock's missing
// CreateTopics, the health probe through an outage, and embedded start-up time.
#include <catch2/catch.hpp>

#include "kafka/health.h"
#include "kafka/topics.h"
#include "kafka_test_support.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using Clock = std::chrono::steady_clock;

TEST_CASE("embedded cluster with the omnibus topics is ready well within a second", "[kafka][integration][topics]") {
    auto t0 = Clock::now();
    EmbeddedCluster cluster;
    KafkaSettings s = settings_for(cluster);
    s.replication_factor = 3;  // capped at the broker count
    EnsureTopicsResult r = ensure_topics(s, omnibus_topics(s), &cluster);
    auto elapsed = Clock::now() - t0;
    REQUIRE(r.ok());
    CHECK(r.created.size() == 8);
    CHECK(elapsed < 1s);
    WARN("embedded cluster + 8 topics in "
         << std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count() << " us");

    EnsureTopicsResult again = ensure_topics(s, omnibus_topics(s), &cluster);
    REQUIRE(again.ok());
    CHECK(again.created.empty());
    CHECK(again.existing.size() == 8);
    // The topics are there with their partition counts, as a client sees them.
    CHECK(high_watermark_total(s, "omnibus.inbound", 3) == 0);
    CHECK(high_watermark_total(s, "omnibus.identity", 1) == 0);
}

TEST_CASE("ensure_topics fails in bounded time when Kafka is unreachable", "[kafka][integration][topics]") {
    KafkaSettings s;
    s.brokers = "127.0.0.1:1";  // nothing listens there
    s.admin_timeout = 1500ms;
    auto t0 = Clock::now();
    EnsureTopicsResult r = ensure_topics(s, omnibus_topics(s));
    auto elapsed = Clock::now() - t0;
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.error, Catch::Contains("not reachable") && Catch::Contains("127.0.0.1:1"));
    CHECK(elapsed < 2500ms);
}

TEST_CASE("the mock cluster does not answer CreateTopics (why the embedded path exists)",
          "[kafka][integration][topics]") {
    EmbeddedCluster cluster;
    KafkaSettings s = settings_for(cluster);
    s.admin_timeout = 1000ms;
    auto t0 = Clock::now();
    EnsureTopicsResult r = ensure_topics(s, {TopicSpec{"t.admin", 1, 1, {}, false}});  // no embedded pointer
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.error, Catch::Contains("CreateTopics"));
    CHECK(Clock::now() - t0 < 2500ms);
}

TEST_CASE("health probe follows an outage of every broker", "[kafka][integration][health]") {
    EmbeddedCluster cluster(3);
    KafkaSettings s = settings_for(cluster);
    HealthProbe probe(s, 250ms);
    REQUIRE(wait_until([&] { return probe.reachable(); }, 5s));
    CHECK(probe.status().brokers == 3);

    auto t0 = Clock::now();
    cluster.command([](auto* m) { return rd_kafka_mock_broker_set_down(m, -1); });
    REQUIRE(wait_until([&] { return !probe.reachable(); }, 5s));
    auto detected = Clock::now() - t0;
    CHECK_FALSE(probe.status().error.empty());
    CHECK(detected < 1s);
    WARN("outage detected after " << std::chrono::duration_cast<std::chrono::milliseconds>(detected).count() << " ms");

    t0 = Clock::now();
    cluster.command([](auto* m) { return rd_kafka_mock_broker_set_up(m, -1); });
    REQUIRE(wait_until([&] { return probe.reachable(); }, 10s));
    WARN("recovery detected after "
         << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count() << " ms");
}

namespace {

uint16_t local_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sin_family != AF_INET) return 0;
    return ntohs(a.sin_port);
}

uint16_t peer_port(int fd) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || a.sin_family != AF_INET) return 0;
    return ntohs(a.sin_port);
}

int nodelay(int fd) {
    int on = -1;
    socklen_t len = sizeof on;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0) return -1;
    return on;
}

}  // namespace

TEST_CASE("the embedded brokers answer without Nagle's delay, as real brokers do", "[kafka][integration][embedded]") {
    // librdkafka's mock leaves Nagle on for the connections it accepts; small responses
    // then wait 40 ms for delayed ACKs. The accept() of embedded_cluster.cpp turns it off.
    EmbeddedCluster cluster;
    const std::string& bootstrap = cluster.bootstrap_servers();
    const auto broker_port = static_cast<uint16_t>(std::stoi(bootstrap.substr(bootstrap.rfind(':') + 1)));

    int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(broker_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(client, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    const uint16_t client_port = local_port(client);

    // The broker's end of this connection is a socket of this process.
    int accepted = -1;
    REQUIRE(wait_until(
        [&] {
            for (int fd = 3; fd < 4096; ++fd)
                if (fd != client && local_port(fd) == broker_port && peer_port(fd) == client_port) {
                    accepted = fd;
                    return true;
                }
            return false;
        },
        5s));
    CHECK(nodelay(accepted) == 1);
    CHECK(nodelay(client) == 0);  // other sockets of the process are left as they are
    ::close(client);

    // A listener that is not an embedded broker's keeps the default, too.
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener >= 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&any), sizeof any) == 0);
    REQUIRE(::listen(listener, 4) == 0);
    int other = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_port = htons(local_port(listener));
    REQUIRE(::connect(other, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    int served = ::accept(listener, nullptr, nullptr);
    REQUIRE(served >= 0);
    CHECK(nodelay(served) == 0);
    ::close(served);
    ::close(other);
    ::close(listener);
}
