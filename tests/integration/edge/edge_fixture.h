// A started EdgeServer on a free loopback port with its own metrics registry,
// plus helpers to read metric values, for the edge integration tests.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "edge/edge_server.h"
#include "http_client.h"
#include "metrics/metrics.h"
#include "support/metric_value.h"

namespace omnibus::test {

using namespace std::chrono_literals;

// Short limits so that timeout tests are fast; each test overrides what it probes.
inline edge::EdgeSettings test_settings() {
    edge::EdgeSettings s;
    s.host = "127.0.0.1";
    s.port = 0;
    s.threads = 2;
    s.header_timeout = 2s;
    s.body_timeout = 2s;
    s.idle_timeout = 5s;
    s.request_timeout = 5s;
    s.write_timeout = 5s;
    s.shutdown_timeout = 2s;
    return s;
}

// test_settings() serving TLS with a fresh self-signed certificate kept in `dir`.
inline edge::EdgeSettings tls_test_settings(TempDir& dir) {
    edge::EdgeSettings s = test_settings();
    s.cert_file = dir.file("cert.pem");
    s.key_file = dir.file("key.pem");
    write_self_signed_cert(s.cert_file, s.key_file);
    return s;
}

// A handler answering 200 with {"ok":true} at once.
inline edge::Handler ok_handler() {
    return [](edge::Request, edge::Responder r) { r.respond(200, "{\"ok\":true}"); };
}

struct Edge {
    metrics::Registry registry;
    edge::EdgeServer server;

    explicit Edge(std::vector<edge::ChannelRoute> routes, edge::EdgeSettings s = test_settings())
        : server(std::move(s), registry) {
        for (auto& r : routes) server.add_channel(std::move(r));
        server.start();
    }
    uint16_t port() const { return server.port(); }

    // The value of one series, by its exact rendered name and labels, e.g.
    // omnibus_edge_requests_total{channel="wa",code="200"}; -1 when absent.
    double metric(std::string_view series) const { return omnibus::test::metric_value(registry, series); }
};

}  // namespace omnibus::test
