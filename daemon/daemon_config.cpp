// The daemon's configuration schema (see daemon_config.h).
#include "daemon/daemon_config.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "connectors/registry.h"
#include "daemon/instance_record.h"
#include "phone/phone_normalizer.h"
#include "pipeline/classify/classifier.h"
#include "pipeline/route/router.h"
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
                   "The admin API: /healthz, /readyz, /metrics, /v1/status and, with the pipeline, "
                   "/v1/customers and /v1/identities (docs/pipeline.md). Loopback only unless a token is set.");
    s.address("listen").def("127.0.0.1:9090").describe("Address the admin API binds.");
    s.secret("token")
        .describe("Bearer token every request must carry (Authorization: Bearer ...) once it is set. Required "
                  "when `listen` is not a loopback address. Reloadable with SIGHUP.")
        .example("${env:OMNIBUS_ADMIN_TOKEN}");
    s.string("advertise")
        .describe("The URL other instances reach this admin API at, as http(s)://host:port and nothing more. With "
                  "several instances, one asked for a customer whose history another holds forwards the request "
                  "there (docs/pipeline.md, \"Which instance answers\"). Unset: http://<listen> with the port bound; a "
                  "wildcard host (0.0.0.0, ::) becomes this machine's host name. Set it when other instances must "
                  "use another address (listen on loopback, a NAT, TLS in front); they need the same `token`.")
        .example("http://10.0.0.5:9090");
    s.check([](const config::Section& sec, config::Reporter& r) {
        if (sec.has("advertise") && !is_admin_url(sec.string("advertise")))
            r.error(sec.position("advertise"), "admin.advertise '" + sec.string("advertise") +
                                                   "' is not http://host:port or https://host:port (no path)");
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
        .def(0.25)
        .range(0.0, 1000.0)
        .describe("Milliseconds the producer waits to batch events (fractions allowed). Every webhook answer waits "
                  "for its acknowledgement, so this adds to webhook latency; the default suits many concurrent "
                  "webhooks (bench/ingest at 32 connections, alternated pairs: 0.25 gave 21.3-24.5k req/s with "
                  "0.61-0.69 ms to the acknowledgement, 0.5 gave 20.3-22.4k and 0.73-0.80 ms; 1 and 2 were far "
                  "slower, 0.05 cost a fifth more CPU), but then a lone webhook waits about 1.5 ms. For webhooks "
                  "that come a few at a time, 0 with client: {max.in.flight.requests.per.connection: 1} answers "
                  "in 0.1-0.3 ms and batches what arrives while a request is in flight (bench/ingest/sweep; "
                  "docs/architecture.md).");
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

// Identity kinds and channel names: the same alphabets as identity strings and block names.
bool is_kind(std::string_view s) {
    return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

bool is_region(const std::string& region) {
    return phone::PhoneNormalizer::is_supported_region(region);
}

std::string region_problem(const std::string& option, const std::string& region) {
    return option + ": '" + region + "' is not a region libphonenumber knows (ISO 3166-1 alpha-2 in capitals, e.g. DE, BR)";
}

config::Spec email_spec() {
    config::Spec s("email", "How email addresses become `email:` identities (the domain is always lower-cased).");
    s.boolean("lowercase_local_part")
        .def(false)
        .describe("Lower-case the part before '@' too. RFC 5321 lets it be case-sensitive, but few mail systems use "
                  "that; turn it on when Ana@shop.com and ana@shop.com are to be one customer.");
    s.boolean("fold_gmail")
        .def(false)
        .describe("For gmail.com and googlemail.com: drop dots and +tags from the local part (Gmail delivers "
                  "a.na+x@gmail.com to ana@gmail.com).");
    return s;
}

config::Spec identity_spec() {
    pipeline::IdentitySettings d;
    config::Spec s("identity", "Identity resolution: one customer id across channels (docs/pipeline.md).");
    s.strings("auto_link")
        .def(std::vector<std::string>(d.auto_link))
        .describe("Identity kinds a message may link to its sender's customer automatically, when the platform or a "
                  "verified claim shows them (never display names, never unverified text). Each is a kind of "
                  "[a-z0-9_-]: phone, email, shop, or a channel kind such as webchat or whatsapp.")
        .example("[phone, email, shop, webchat]");
    s.section(email_spec());
    s.string("default_region")
        .describe("Region (ISO 3166-1 alpha-2) for phone numbers in claims written without '+'. Unset: such numbers "
                  "stay raw identities, never guessed.")
        .example("DE");
    // The config library has no plain string map; its one mapping type is the secret map, so
    // the regions are read through it (values are region codes, not secrets).
    s.secret_map("phone_regions")
        .describe("Per channel name, the region for phone numbers written without '+' on that channel; channels not "
                  "listed use `default_region`. A mapping of channel names to ISO 3166-1 alpha-2 codes, written "
                  "as plain text (listed as a map of secrets: the one mapping type of the config; regions are not "
                  "secret and are named in errors).")
        .example("{wa-brasil: BR, webchat-de: DE}");
    s.duration("rebuild_after")
        .def(d.rebuild_after)
        .range(std::chrono::minutes(1), std::chrono::hours(24 * 7))
        .describe("A local identity store last written longer ago than this is rebuilt from the identity log at "
                  "start-up: the log keeps every record for 7 days (min.compaction.lag.ms), after that compaction "
                  "may have removed records the store never applied.");
    s.check([](const config::Section& sec, config::Reporter& r) {
        std::set<std::string> seen;
        for (const auto& kind : sec.strings("auto_link")) {
            if (!is_kind(kind))
                r.error(sec.position("auto_link"), "pipeline.identity.auto_link: '" + kind +
                                                       "' is not an identity kind (1 to 32 of [a-z0-9_-])");
            else if (!seen.insert(kind).second)
                r.error(sec.position("auto_link"), "pipeline.identity.auto_link: '" + kind + "' is listed twice");
        }
        if (sec.has("default_region") && !sec.string("default_region").empty() &&
            !is_region(sec.string("default_region")))
            r.error(sec.position("default_region"),
                    region_problem("pipeline.identity.default_region", sec.string("default_region")));
        for (const auto& [channel, region] : sec.secret_map("phone_regions")) {  // the names: by the top-level rule, which sees the channels
            if (!is_region(region.reveal()))  // a region code, not a secret (see the declaration)
                r.error(sec.position("phone_regions"),
                        region_problem("pipeline.identity.phone_regions." + channel, region.reveal()));
        }
    });
    return s;
}

config::Spec history_spec() {
    pipeline::HistorySettings d;
    config::Spec s("history", "Conversation history: what each emitted message carries as `context`.");
    s.duration("conversation_idle")
        .def(d.conversation_idle)
        .range(std::chrono::minutes(1), std::chrono::hours(24 * 30))
        .describe("A conversation closes after this long without a message; the next message opens a new one.");
    s.integer("context_messages")
        .def(d.context_messages)
        .range(0, 1000)
        .describe("The customer's last N messages go into a message's `context` (0: none).");
    s.size("context_bytes")
        .def(static_cast<std::uint64_t>(d.context_bytes))
        .range("0", "1MiB")
        .describe("Byte budget of the text in `context`; older entries are dropped first.");
    s.size("cache_bytes")
        .def(static_cast<std::uint64_t>(d.cache_bytes))
        .range("0", "16GiB")
        .describe("Memory for the newest messages of recently active customers, kept in front of the history "
                  "stores (0: every read goes to disk).");
    s.duration("retention")
        .def(d.retention)
        .range(std::chrono::hours(1), std::chrono::hours(24 * 3650))
        .describe("Messages older than this are purged from the history and its changelog.");
    return s;
}

config::Spec routing_spec() {
    config::Spec s("routing", "Routing rules: which outbox, priority and queue each message gets (docs/routing.md).");
    s.string("rules_file")
        .describe("A routing rules file (docs/routing.md), relative to this file's directory unless absolute. "
                  "Unset: the built-in rules (config/routing.yaml). Checked at load: a bad rule is an error here.")
        .example("/etc/omnibus/routing.yaml");
    return s;
}

config::Spec classify_spec() {
    config::Spec s("classify", "Language, intent, entities and sentiment of each inbound message (docs/classification.md).");
    s.string("rules_file")
        .describe("A classification rules file (docs/classification.md), relative to this file's directory unless "
                  "absolute. Unset: the built-in rules (config/classify.yaml, ten languages). Checked at load.")
        .example("/etc/omnibus/classify.yaml");
    return s;
}

config::Spec pipeline_spec() {
    config::Spec s("pipeline",
                   "The pipeline stages between omnibus.inbound and the outboxes (docs/pipeline.md): identity, "
                   "conversation history, classification and routing, and the replies' way back.");
    s.boolean("enabled")
        .def(true)
        .describe("Run the pipeline on this instance: the identity service, the stages (and the /v1/customers and "
                  "/v1/identities admin routes) start once the topics exist.");
    s.real("producer_linger_ms")
        .def(5.0)
        .range(0.0, 1000.0)
        .describe("Milliseconds the pipeline stages' producer waits to batch records (fractions allowed); the "
                  "edge's producer keeps kafka.linger_ms. Nobody waits on a stage's output as a webhook waits "
                  "for its answer, and bigger batches cost less CPU: bench_pipeline, 5 against 0.5, gave 13-25 % "
                  "more messages per CPU-second. The same as kafka.linger_ms: one producer for both.");
    s.enumeration("transactions", {"auto", "on", "off"})
        .def("auto")
        .describe("Kafka transactions for the conversation stage: its outputs, changelog records and input offsets "
                  "are committed together, so read_committed consumers of the outboxes never see a message twice "
                  "after a crash (docs/pipeline.md). auto: on, except with kafka.embedded (its mock cluster does "
                  "not implement them) or when the cluster refuses them (then off, with a warning). on: the "
                  "pipeline does not start without them. off: the stage relies on deduplication by message id "
                  "alone (a crash between an output and its changelog record can emit that output twice, with "
                  "the same id).");
    s.duration("transaction_interval")
        .def(std::chrono::milliseconds(100))
        .range(std::chrono::milliseconds(10), std::chrono::seconds(10))
        .describe("How often the conversation stage commits its transaction: the longest a routed message waits "
                  "before read_committed consumers see it. Each commit first waits for the work in flight.");
    s.section(identity_spec());
    s.section(history_spec());
    s.section(classify_spec());
    s.section(routing_spec());
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
    root.section(pipeline_spec());
    root.blocks("channels", registry.block_types())
        .describe("Channel instances: each block has a unique `name` (used in URLs, e.g. /webhooks/<name>) and a "
                  "`type` that selects the connector and its options.");
    root.check([](const config::Section& sec, config::Reporter& r) {
        // A region for a channel that does not exist is a typo: it would silently do nothing.
        const auto& identity = sec.section("pipeline").section("identity");
        std::set<std::string> names;
        for (const auto& ch : sec.blocks("channels")) names.insert(ch.name());
        for (const auto& [channel, region] : identity.secret_map("phone_regions"))
            if (!names.count(channel))
                r.error(identity.position("phone_regions"),
                        "pipeline.identity.phone_regions: no channel is named '" + channel + "'");
    });
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
    if (admin.has("advertise")) c.admin_advertise = admin.string("advertise");

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
    c.pipeline = pipeline_settings(root.section("pipeline"));
    return c;
}

pipeline::PipelineSettings pipeline_settings(const config::Section& p) {
    pipeline::PipelineSettings s;
    s.enabled = p.boolean("enabled");
    s.producer_linger = std::chrono::microseconds(static_cast<std::int64_t>(p.real("producer_linger_ms") * 1000.0 + 0.5));
    const std::string txn = p.string("transactions");
    s.transactions = txn == "on"    ? pipeline::PipelineSettings::Transactions::on
                     : txn == "off" ? pipeline::PipelineSettings::Transactions::off
                                    : pipeline::PipelineSettings::Transactions::automatic;
    s.transaction_interval = p.duration("transaction_interval");
    const auto& id = p.section("identity");
    s.identity.auto_link = id.strings("auto_link");
    s.identity.email_lowercase_local_part = id.section("email").boolean("lowercase_local_part");
    s.identity.email_fold_gmail = id.section("email").boolean("fold_gmail");
    if (id.has("default_region")) s.identity.default_region = id.string("default_region");
    for (const auto& [channel, region] : id.secret_map("phone_regions"))
        s.identity.channel_regions.emplace(channel, region.reveal());  // region codes, not secrets
    s.identity.rebuild_after = id.duration("rebuild_after");
    const auto& h = p.section("history");
    s.history.conversation_idle = h.duration("conversation_idle");
    s.history.context_messages = static_cast<std::size_t>(h.integer("context_messages"));
    s.history.context_bytes = static_cast<std::size_t>(h.size("context_bytes"));
    s.history.cache_bytes = static_cast<std::size_t>(h.size("cache_bytes"));
    s.history.retention = h.duration("retention");
    if (const auto& r = p.section("routing"); r.has("rules_file")) s.routing_rules_file = r.string("rules_file");
    if (const auto& c = p.section("classify"); c.has("rules_file")) s.classify_rules_file = c.string("rules_file");
    return s;
}

config::LoadResult load_daemon_config(const std::string& path, const connectors::Registry& registry,
                                      const config::LoadOptions& options) {
    config::Spec schema = daemon_schema(registry);
    config::LoadResult result = config::load_file(path, schema, options);
    if (!result.ok()) return result;
    // The routing rules file is part of the configuration: its problems are load errors too,
    // each at its own FILE:LINE:COL.
    const auto& routing = result.config->section("pipeline").section("routing");
    const auto& classify = result.config->section("pipeline").section("classify");
    if (classify.has("rules_file")) {
        auto rules = pipeline::classify::Classifier::load_file(resolve_beside(path, classify.string("rules_file")));
        if (!rules.ok()) {
            for (auto& d : rules.errors) result.diagnostics.push_back(std::move(d));
            result.config.reset();
            return result;
        }
    }
    if (routing.has("rules_file")) {
        const std::string file = resolve_beside(path, routing.string("rules_file"));
        auto rules = pipeline::route::Router::load_file(file);
        if (!rules.ok()) {
            for (auto& d : rules.errors) result.diagnostics.push_back(std::move(d));
            result.config.reset();
        }
    }
    return result;
}

std::string resolve_beside(const std::string& config_path, const std::string& file) {
    if (file.empty() || file.front() == '/') return file;
    const std::filesystem::path dir = std::filesystem::path(config_path).parent_path();
    return (dir / file).string();
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
