// The daemon's configuration schema (see daemon_config.h).
#include "daemon/daemon_config.h"

#include "connectors/registry.h"
#include "edge/edge_config.h"
#include "kafka/client_config.h"

namespace omnibus::daemon {
namespace {

config::Spec log_spec() {
    config::Spec s("log", "Logging: JSON lines on standard output, one per event (journald stores them).");
    s.enumeration("level", {"debug", "info", "warn", "error"})
        .def("info")
        .describe("Lowest level written. Reloadable with SIGHUP.");
    return s;
}

config::Spec admin_spec() {
    config::Spec s("admin",
                   "The admin API: /healthz, /readyz, /metrics and /v1/status. "
                   "Loopback only unless a token is set.");
    s.address("listen").def("127.0.0.1:9090").describe("Address the admin API binds.");
    s.secret("token")
        .describe("Bearer token every request must carry (Authorization: Bearer ...) once it is set. Required "
                  "when `listen` is not a loopback address. Reloadable with SIGHUP.")
        .example("${env:OMNIBUS_ADMIN_TOKEN}");
    s.check([](const config::Section& sec, config::Reporter& r) {
        const auto& addr = sec.address("listen");
        if (!is_loopback_host(addr.host) && (!sec.has("token") || sec.secret("token").empty()))
            r.error(sec.position("listen"),
                    "admin.listen " + addr.to_string() + " is not a loopback address: admin.token is required");
    });
    return s;
}

config::Spec kafka_spec() {
    config::Spec s("kafka", "The Kafka cluster every event goes through.");
    s.boolean("embedded")
        .def(false)
        .describe("Start librdkafka's mock cluster in-process instead of connecting to `brokers`. For development "
                  "only: nothing is durable and each partition keeps only its newest ~5 MB.");
    s.integer("embedded_brokers").def(1).range(1, 5).describe("Brokers of the embedded cluster.");
    s.string("brokers")
        .describe("Comma-separated bootstrap list. Required unless `embedded` is true.")
        .example("kafka1:9092,kafka2:9092,kafka3:9092");
    s.secret_map("client")
        .describe("librdkafka properties passed through (security.protocol, sasl.*, ssl.*, compression.type, ...). "
                  "Values may use ${env:} and ${file:} and are never logged. Properties omnibus sets itself "
                  "(bootstrap.servers, enable.idempotence, acks, group.id, ...) are refused.")
        .example("{security.protocol: SASL_SSL, sasl.mechanism: SCRAM-SHA-512, sasl.username: omnibus, "
                 "sasl.password: \"${env:KAFKA_PASSWORD}\"}");
    s.string("topic_prefix").def("omnibus.").describe("Prefix of every omnibus topic.");
    s.string("group_id")
        .def("omnibus")
        .describe("Prefix of the consumer groups (<group_id>.delivery, ...). Instances with the same group_id share "
                  "the work; two deployments on one cluster need different ones.");
    s.integer("partitions")
        .def(6)
        .range(1, 10000)
        .describe("Partitions of each topic created at start-up (the identity log always has one).");
    s.integer("replication_factor")
        .def(3)
        .range(1, 100)
        .describe("Replication factor of each topic created at start-up (capped at the broker count when embedded).");
    s.duration("message_timeout")
        .def("30s")
        .range(std::chrono::milliseconds(100), std::chrono::hours(1))
        .describe("How long a produced event may wait for acknowledgement (acks=all) before it counts as failed.");
    s.real("linger_ms")
        .def(0.5)
        .range(0.0, 1000.0)
        .describe("Milliseconds the producer waits to batch events (fractions allowed). Every webhook answer waits "
                  "for its acknowledgement, so this adds to webhook latency; 0 sends a request per event and costs "
                  "more than it saves. bench/ingest: 0.5 gave 17-19.6k req/s, 1 gave 14.4k, 2 gave 9.8k.");
    s.duration("admin_timeout")
        .def("5s")
        .range(std::chrono::milliseconds(100), std::chrono::minutes(5))
        .describe("Bound of one topic-creation attempt and of one reachability probe.");
    s.check([](const config::Section& sec, config::Reporter& r) {
        if (!sec.boolean("embedded") && (!sec.has("brokers") || sec.string("brokers").empty()))
            r.error(sec.position("brokers"), "kafka.brokers is required unless kafka.embedded is true");
        if (!sec.has("client")) return;
        std::map<std::string, Secret> client(sec.secret_map("client").begin(), sec.secret_map("client").end());
        for (const auto& problem : kafka::validate_client_properties(client))
            r.error(sec.position("client"), "kafka.client: " + problem);
    });
    return s;
}

config::Spec shutdown_spec() {
    config::Spec s("shutdown", "What SIGTERM and SIGINT do: stop accepting, flush the producer, commit offsets.");
    s.duration("timeout")
        .def("4s")
        .range(std::chrono::milliseconds(100), std::chrono::minutes(5))
        .describe("Upper bound of the whole drain; what is not acknowledged by then is reported as failed.");
    return s;
}

}  // namespace

config::Spec daemon_schema(const connectors::Registry& registry) {
    config::Spec root("", "omnibusd configuration file.");
    root.string("state_dir")
        .def("/var/lib/omnibus")
        .describe("Writable directory for local state (dedup windows, state stores). The systemd unit's "
                  "StateDirectory is /var/lib/omnibus.");
    root.section(log_spec());
    root.section(admin_spec());
    root.section(edge::edge_spec());
    root.section(kafka_spec());
    root.section(shutdown_spec());
    root.blocks("channels", registry.block_types())
        .describe("Channel instances: each block has a unique `name` (used in URLs, e.g. /webhooks/<name>) and a "
                  "`type` that selects the connector and its options.");
    return root;
}

DaemonConfig to_daemon_config(const config::Section& root) {
    DaemonConfig c;
    c.root = root;
    log::parse_level(root.section("log").string("level"), c.log_level);

    const auto& admin = root.section("admin");
    c.admin.host = admin.address("listen").host;
    c.admin.port = admin.address("listen").port;
    if (admin.has("token")) c.admin.token = admin.secret("token");

    c.edge = edge::edge_settings(root.section("edge"));
    c.state_dir = root.string("state_dir");

    const auto& k = root.section("kafka");
    c.kafka.embedded = k.boolean("embedded");
    c.kafka.embedded_brokers = static_cast<int>(k.integer("embedded_brokers"));
    if (k.has("brokers")) c.kafka.brokers = k.string("brokers");
    if (k.has("client"))
        c.kafka.client = std::map<std::string, Secret>(k.secret_map("client").begin(), k.secret_map("client").end());
    c.kafka.topic_prefix = k.string("topic_prefix");
    c.kafka.group_id = k.string("group_id");
    c.kafka.partitions = static_cast<int>(k.integer("partitions"));
    c.kafka.replication_factor = static_cast<int>(k.integer("replication_factor"));
    c.kafka.message_timeout = k.duration("message_timeout");
    c.kafka.linger = std::chrono::microseconds(static_cast<std::int64_t>(k.real("linger_ms") * 1000.0 + 0.5));
    c.kafka.admin_timeout = k.duration("admin_timeout");

    c.shutdown_timeout = root.section("shutdown").duration("timeout");
    // The edge drains first and must leave time for the producer flush after it.
    c.edge.shutdown_timeout = std::min(c.edge.shutdown_timeout, c.shutdown_timeout * 3 / 4);
    c.kafka.close_timeout = c.shutdown_timeout;
    c.channels = root.blocks("channels");
    return c;
}

config::LoadResult load_daemon_config(const std::string& path, const connectors::Registry& registry,
                                      const config::LoadOptions& options) {
    config::Spec schema = daemon_schema(registry);
    return config::load_file(path, schema, options);
}

std::string summarize(const std::string& path, const DaemonConfig& cfg) {
    std::string s = path + ": ok: kafka ";
    s += cfg.kafka.embedded ? "embedded" : cfg.kafka.brokers;
    s += ", edge " + cfg.edge.host + ":" + std::to_string(cfg.edge.port);
    s += ", admin " + cfg.admin.host + ":" + std::to_string(cfg.admin.port);
    s += ", " + std::to_string(cfg.channels.size()) + (cfg.channels.size() == 1 ? " channel" : " channels");
    if (!cfg.channels.empty()) {
        s += " (";
        for (size_t i = 0; i < cfg.channels.size(); ++i) {
            if (i) s += ", ";
            s += cfg.channels[i].name() + ": " + cfg.channels[i].type();
        }
        s += ")";
    }
    return s;
}

bool reloadable(const std::string& option_path) { return option_path == "log.level" || option_path == "admin.token"; }

}  // namespace omnibus::daemon
