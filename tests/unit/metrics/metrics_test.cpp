// The registry renders the Prometheus text format: HELP/TYPE once per family,
// labels escaped, histograms cumulative with +Inf, _sum and _count.
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics.h"

using namespace omnibus::metrics;

TEST_CASE("counters with labels render one series each under one HELP and TYPE") {
    Registry r;
    r.counter("omnibus_edge_requests_total", "Requests.", {{"channel", "wa"}}).inc(3);
    r.counter("omnibus_edge_requests_total", "Requests.", {{"channel", "tg"}}).inc();
    std::string out = r.render();
    CHECK(out.find("# HELP omnibus_edge_requests_total Requests.\n# TYPE omnibus_edge_requests_total counter\n") !=
          std::string::npos);
    CHECK(out.find("omnibus_edge_requests_total{channel=\"wa\"} 3\n") != std::string::npos);
    CHECK(out.find("omnibus_edge_requests_total{channel=\"tg\"} 1\n") != std::string::npos);
    CHECK(out.find("# TYPE omnibus_edge_requests_total", out.find("# TYPE") + 1) == std::string::npos);
}

TEST_CASE("the same name and labels return the same series") {
    Registry r;
    Counter& a = r.counter("omnibus_x_total", "x", {{"k", "v"}});
    Counter& b = r.counter("omnibus_x_total", "x", {{"k", "v"}});
    CHECK(&a == &b);
}

TEST_CASE("label values are escaped") {
    Registry r;
    r.gauge("omnibus_g", "g", {{"name", "a\"b\\c\nd"}}).set(1.5);
    CHECK(r.render().find("omnibus_g{name=\"a\\\"b\\\\c\\nd\"} 1.5\n") != std::string::npos);
}

TEST_CASE("histograms are cumulative and end with +Inf, _sum and _count") {
    Registry r;
    Histogram& h = r.histogram("omnibus_kafka_delivery_seconds", "d", {0.001, 0.01, 0.1}, {{"topic", "t"}});
    h.observe(0.0005);
    h.observe(0.005);
    h.observe(0.005);
    h.observe(5);
    std::string out = r.render();
    CHECK(out.find("omnibus_kafka_delivery_seconds_bucket{topic=\"t\",le=\"0.001\"} 1\n") != std::string::npos);
    CHECK(out.find("omnibus_kafka_delivery_seconds_bucket{topic=\"t\",le=\"0.01\"} 3\n") != std::string::npos);
    CHECK(out.find("omnibus_kafka_delivery_seconds_bucket{topic=\"t\",le=\"0.1\"} 3\n") != std::string::npos);
    CHECK(out.find("omnibus_kafka_delivery_seconds_bucket{topic=\"t\",le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(out.find("omnibus_kafka_delivery_seconds_count{topic=\"t\"} 4\n") != std::string::npos);
}

TEST_CASE("function gauges are read at render time") {
    Registry r;
    int depth = 7;
    r.gauge_fn("omnibus_queue_depth", "q", {}, [&] { return double(depth); });
    CHECK(r.render().find("omnibus_queue_depth 7\n") != std::string::npos);
    depth = 9;
    CHECK(r.render().find("omnibus_queue_depth 9\n") != std::string::npos);
}

TEST_CASE("counters are exact under concurrent increments") {
    Registry r;
    Counter& c = r.counter("omnibus_c_total", "c");
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
        ts.emplace_back([&] {
            for (int j = 0; j < 100000; ++j) c.inc();
        });
    for (auto& t : ts) t.join();
    CHECK(c.value() == 400000);
}

TEST_CASE("invalid names and type clashes are refused") {
    Registry r;
    CHECK_THROWS(r.counter("bad-name", "x"));
    r.counter("omnibus_dup", "x");
    CHECK_THROWS(r.gauge("omnibus_dup", "x"));
}
