// The `edge:` block: defaults, every option read into EdgeSettings, and the
// certificate/key pairing check.
#include <catch2/catch.hpp>

#include "config/loader.h"
#include "edge/edge_config.h"

using namespace omnibus;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {
config::LoadResult load(const std::string& yaml) {
    config::Spec root("", "test");
    root.section(edge::edge_spec());
    return config::load_string(yaml, "test.yaml", root);
}
}  // namespace

TEST_CASE("an absent edge block gives the documented defaults") {
    auto r = load("{}\n");
    INFO(r.report());
    REQUIRE(r.ok());
    const edge::EdgeSettings s = edge::edge_settings(r.config->section("edge"));
    const edge::EdgeSettings d;
    CHECK(s.host == "0.0.0.0");
    CHECK(s.port == 8080);
    CHECK(s.threads == 0);
    CHECK(s.cert_file.empty());
    CHECK(s.backlog == d.backlog);
    CHECK(s.max_body_bytes == d.max_body_bytes);
    CHECK(s.max_header_bytes == d.max_header_bytes);
    CHECK(s.header_timeout == d.header_timeout);
    CHECK(s.body_timeout == d.body_timeout);
    CHECK(s.idle_timeout == d.idle_timeout);
    CHECK(s.request_timeout == d.request_timeout);
    CHECK(s.write_timeout == d.write_timeout);
    CHECK(s.shutdown_timeout == d.shutdown_timeout);
    CHECK(s.max_connections == d.max_connections);
    CHECK(s.max_connections_per_ip == d.max_connections_per_ip);
}

TEST_CASE("every edge option is read into EdgeSettings") {
    auto r = load(R"(edge:
  listen: 127.0.0.1:8443
  threads: 4
  cert_file: /etc/tls/cert.pem
  key_file: /etc/tls/key.pem
  backlog: 1024
  max_body: 256KiB
  max_header: 8KiB
  header_timeout: 5s
  body_timeout: 15s
  idle_timeout: 2m
  request_timeout: 8s
  write_timeout: 20s
  shutdown_timeout: 3s
  max_connections: 5000
  max_connections_per_ip: 0
)");
    INFO(r.report());
    REQUIRE(r.ok());
    const edge::EdgeSettings s = edge::edge_settings(r.config->section("edge"));
    CHECK(s.host == "127.0.0.1");
    CHECK(s.port == 8443);
    CHECK(s.threads == 4);
    CHECK(s.cert_file == "/etc/tls/cert.pem");
    CHECK(s.key_file == "/etc/tls/key.pem");
    CHECK(s.backlog == 1024);
    CHECK(s.max_body_bytes == 256 * 1024);
    CHECK(s.max_header_bytes == 8 * 1024);
    CHECK(s.header_timeout == 5s);
    CHECK(s.body_timeout == 15s);
    CHECK(s.idle_timeout == 120s);
    CHECK(s.request_timeout == 8s);
    CHECK(s.write_timeout == 20s);
    CHECK(s.shutdown_timeout == 3s);
    CHECK(s.max_connections == 5000);
    CHECK(s.max_connections_per_ip == 0);
}

TEST_CASE("a certificate without its key is reported at the certificate") {
    auto r = load("edge:\n  cert_file: /c.pem\n");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.report(), Contains("test.yaml:2:") && Contains("edge.cert_file is set but edge.key_file is not"));
    r = load("edge:\n  key_file: /k.pem\n");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.report(), Contains("edge.key_file is set but edge.cert_file is not"));
}

TEST_CASE("values out of range are reported with their position") {
    auto r = load("edge:\n  header_timeout: 0s\n  max_body: 1GiB\n  threads: -1\n");
    REQUIRE_FALSE(r.ok());
    const std::string report = r.report();
    CHECK_THAT(report, Contains("test.yaml:2:") && Contains("edge.header_timeout"));
    CHECK_THAT(report, Contains("test.yaml:3:") && Contains("edge.max_body"));
    CHECK_THAT(report, Contains("test.yaml:4:") && Contains("edge.threads"));
}
