// The daemon's lifecycle (see daemon.h).
#include "daemon/daemon.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "daemon/instance_directory.h"
#include "daemon/systemd_notify.h"
#include "kafka/embedded_cluster.h"
#include "kafka/health.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "log/log.h"
#include "pipeline/history/conversation_stage.h"
#include "pipeline/history/reply_intake.h"
#include "pipeline/classify/classifier.h"
#include "pipeline/route/router.h"
#include "pipeline/identity/identity_service.h"
#include "pipeline/identity/resolve_stage.h"

namespace omnibus::daemon {
namespace {

constexpr log::Logger lg{"daemon"};

std::string rfc3339(std::chrono::system_clock::time_point t) {
    std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// This instance on the identity log: "<hostname>:<pid>", in the alphabet an origin allows.
std::string instance_origin() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "omnibusd");
    std::string origin = std::string(host) + ":" + std::to_string(::getpid());
    for (char& c : origin) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == ':' || c == '-';
        if (!ok) c = '-';
    }
    return origin;
}

// The admin URL other instances use when none is configured: http://<listen host>:<bound port>,
// a wildcard host replaced by this machine's name, an IPv6 address in brackets.
std::string default_admin_url(std::string host, uint16_t port) {
    if (host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]") {
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return {};
        host = name;
    } else if (host.find(':') != std::string::npos && host.front() != '[') {
        host = "[" + host + "]";
    }
    return "http://" + host + ":" + std::to_string(port);
}

}  // namespace

Daemon::Daemon(std::string config_path, DaemonConfig config, const connectors::Registry& registry,
               metrics::Registry& metrics)
    : config_path_(std::move(config_path)),
      config_(std::move(config)),
      registry_(registry),
      metrics_(metrics),
      started_(std::chrono::steady_clock::now()),
      started_wall_(std::chrono::system_clock::now()) {}

Daemon::~Daemon() { shutdown(); }

void Daemon::start() {
    log::set_level(config_.log_level);
    auto& kcfg = config_.kafka;
    if (kcfg.embedded) {
        embedded_ = std::make_unique<kafka::EmbeddedCluster>(kcfg.embedded_brokers);
        kcfg.brokers = embedded_->bootstrap_servers();
    }

    producer_ = std::make_unique<kafka::Producer>(kcfg, metrics_);
    health_ = std::make_unique<kafka::HealthProbe>(kcfg);
    topic_keeper_ = std::thread([this] { keep_topics(); });

    admin_ = std::make_unique<AdminServer>(
        config_.admin, metrics_, [this] { return readiness(); }, [this] { return status_json(); });
    if (config_.pipeline.enabled) {
        CustomerApiOptions api;
        api.email = {config_.pipeline.identity.email_lowercase_local_part, config_.pipeline.identity.email_fold_gmail};
        forwarder_ = std::make_unique<AdminForwarder>(AdminForwarderOptions{}, metrics_);
        api.holder = [this](int partition) -> std::optional<Holder> {
            std::shared_lock lock(identity_mu_);
            return directory_ ? directory_->holder(partition) : std::nullopt;
        };
        api.forward = [this](const ForwardRequest& r) { return forwarder_->get(r); };
        customer_api_ = std::make_unique<CustomerApi>(
            [this](const std::function<void(pipeline::identity::IdentityService&)>& fn) { return with_identity(fn); },
            api,
            [this](const std::function<void(pipeline::history::ConversationStage&)>& fn) { return with_history(fn); });
        customer_api_->register_routes(*admin_);
    }
    admin_->start();
    admin_url_ = config_.admin_advertise.empty() ? default_admin_url(config_.admin.host, admin_->port())
                                                 : config_.admin_advertise;
    if (config_.pipeline.enabled && !is_admin_url(admin_url_)) {
        lg.error("the admin URL cannot be advertised; other instances will not forward requests here: set "
                 "admin.advertise",
                 {{"admin_url", admin_url_}});
        admin_url_.clear();
    }

    metrics_.gauge_fn("omnibus_daemon_ready", "1 when every readiness check passes.", {},
                      [this] { return ready() ? 1.0 : 0.0; });
    metrics_.gauge_fn("omnibus_daemon_uptime_seconds", "Seconds since the daemon started.", {}, [this] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    });

    std::error_code ec;
    std::filesystem::create_directories(config_.state_dir, ec);
    if (ec) throw std::runtime_error("state_dir " + config_.state_dir + ": " + ec.message());

    // Channels register their routes on the edge; it starts listening once all are in place.
    edge_ = std::make_unique<edge::EdgeServer>(config_.edge, metrics_);
    for (const auto& block : config_.channels) {
        const connectors::ConnectorType* type = registry_.find(block.type());
        if (!type) throw std::runtime_error("channel " + block.name() + ": unknown type " + block.type());
        connectors::ConnectorContext ctx{block, kcfg, *producer_, metrics_, *edge_, config_.state_dir};
        auto channel = type->create(ctx);
        channel->start();
        lg.info("channel started", {{"channel", block.name()}, {"type", block.type()}});
        channels_.push_back(std::move(channel));
    }
    edge_->start();
    // Delivery reports complete webhook answers: served on the edge workers that write
    // them, one thread hop less per acknowledgement (docs/architecture.md).
    producer_->serve_deliveries_on([edge = edge_.get()](std::function<void()> fn) {
        return edge->post(std::move(fn));  // false only once it stops: the poll thread serves then
    });
    {
        std::lock_guard lock(topics_mu_);
        channels_started_ = true;
    }
    topics_cv_.notify_all();  // the topic keeper may be waiting for the channels (start_identity)
    start_delivery();

    lg.info("started", {{"config", config_path_},
                        {"admin", config_.admin.host + ":" + std::to_string(admin_->port())},
                        {"edge", config_.edge.host + ":" + std::to_string(edge_->port())},
                        {"tls", edge_->tls()},
                        {"bootstrap_servers", kcfg.brokers},
                        {"channels", config_.channels.size()}});
    systemd::notify_ready("running; waiting for Kafka");
}

void Daemon::keep_topics() {
    auto backoff = std::chrono::milliseconds(200);
    for (;;) {
        auto result = kafka::ensure_topics(config_.kafka, topics(), embedded_.get());
        std::unique_lock lock(topics_mu_);
        if (stopping_) return;
        if (result.ok()) {
            lock.unlock();
            // Fetch leaders now, so the first events do not wait for librdkafka's periodic topic scan.
            std::vector<std::string> names;
            for (const auto& t : topics()) names.push_back(t.name);
            producer_->warm_up(names, config_.kafka.admin_timeout);
            lock.lock();
            topics_error_.clear();
            topics_ready_ = true;
            lock.unlock();
            lg.info("topics ready", {{"created", result.created.size()}, {"existing", result.existing.size()}});
            start_delivery();
            if (config_.pipeline.enabled) start_identity();
            break;
        }
        topics_error_ = result.error;
        lg.warn("cannot ensure topics; retrying", {{"error", result.error}, {"retry_ms", backoff.count()}});
        topics_cv_.wait_for(lock, backoff, [this] { return stopping_; });
        if (stopping_) return;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    }
    // Readiness turns true once the probe also sees the brokers; say so once.
    std::unique_lock lock(topics_mu_);
    while (!stopping_) {
        if (ready() && !ready_logged_.exchange(true)) {
            lock.unlock();
            auto since = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
            lg.info("ready", {{"bootstrap_servers", config_.kafka.brokers},
                              {"admin", config_.admin.host + ":" + std::to_string(admin_port())},
                              {"startup_seconds", since}});
            systemd::notify_status("ready");
            lock.lock();
        }
        topics_cv_.wait_for(lock, std::chrono::milliseconds(ready_logged_ ? 1000 : 20), [this] { return stopping_; });
    }
}

void Daemon::start_delivery() {
    // Runs once both the topics exist and the channels are built, on whichever
    // thread saw the second of the two.
    {
        std::lock_guard lock(topics_mu_);
        if (!topics_ready_.load() || !channels_started_ || delivery_claimed_ || stopping_) return;
        delivery_claimed_ = true;
    }
    std::vector<std::pair<std::string, connectors::Connector*>> outbound;
    for (std::size_t i = 0; i < channels_.size(); ++i)
        if (channels_[i]->delivers()) outbound.emplace_back(config_.channels[i].name(), channels_[i].get());
    if (outbound.empty()) return;
    const std::size_t n = outbound.size();
    auto d = std::make_unique<connectors::DeliveryDispatcher>(config_.kafka, connectors::DispatcherOptions{config_.kafka.group_id},
                                                              std::move(outbound), *producer_, metrics_);
    std::lock_guard lock(topics_mu_);
    if (stopping_) return;  // d stops as it goes
    dispatcher_ = std::move(d);
    lg.info("delivering replies", {{"group", config_.kafka.group_id + ".delivery"}, {"channels", n}});
}

void Daemon::start_identity() {
    pipeline::identity::IdentityServiceOptions opts;
    opts.store_path = config_.state_dir + "/identity";
    opts.topic = config_.kafka.topic_prefix + "identity";
    opts.events_topic = config_.kafka.topic_prefix + "events";
    opts.origin = instance_origin();
    opts.rebuild_after = config_.pipeline.identity.rebuild_after;
    // Erasures reach the channels' local state (docs/connectors.md, "Erasure"). channels_ is
    // complete before the service exists (below) and cleared only after it stopped.
    opts.on_erasure = [this](std::span<const std::string> identities) {
        for (const auto& channel : channels_) channel->forget(identities);
    };
    {
        // Every erasure on the log, also those replayed now, must find the channels built.
        std::unique_lock lock(topics_mu_);
        topics_cv_.wait(lock, [this] { return channels_started_ || stopping_; });
        if (stopping_) return;
    }
    if (config_.kafka.embedded) {
        // The embedded cluster's log is new at every start: a store from an earlier run reflects
        // a log that no longer exists, and would give other answers than this one.
        std::error_code ec;
        std::filesystem::remove_all(opts.store_path, ec);
    }
    auto backoff = std::chrono::milliseconds(200);
    const auto attempt = std::min(config_.kafka.admin_timeout, std::chrono::milliseconds(1000));
    std::unique_ptr<pipeline::identity::IdentityService> created;
    for (;;) {
        std::string why;
        try {
            created = std::make_unique<pipeline::identity::IdentityService>(config_.kafka, metrics_, *producer_, opts);
        } catch (const std::exception& e) {
            why = e.what();
        }
        std::unique_lock lock(topics_mu_);
        if (stopping_) return;  // created stops as it goes
        if (created) break;
        identity_error_ = why;
        lg.warn("cannot start the identity service; retrying", {{"error", why}, {"retry_ms", backoff.count()}});
        topics_cv_.wait_for(lock, backoff, [this] { return stopping_; });
        if (stopping_) return;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    }
    pipeline::identity::IdentityService* svc = created.get();
    {
        // Published under topics_mu_ too, so shutdown (which sets stopping_ under it, then joins
        // this thread) always finds the service it has to stop.
        std::lock_guard topics(topics_mu_);
        if (stopping_) return;
        std::unique_lock lock(identity_mu_);
        identity_ = std::move(created);
        identity_error_ = "catching up with the identity log";
    }
    // Reading the log so far: bounded attempts, so shutdown never waits long for this thread.
    for (;;) {
        if (svc->wait_caught_up(attempt)) break;
        // It also answers false at once (the reader failed): never spin on that.
        std::unique_lock lock(topics_mu_);
        topics_cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stopping_; });
        if (stopping_) return;
    }
    identity_caught_up_ = true;
    {
        std::lock_guard lock(topics_mu_);
        identity_error_.clear();
    }
    lg.info("identity service caught up", {{"offset", svc->applied_offset()}, {"origin", opts.origin}});
    start_pipeline();
}

std::vector<kafka::TopicSpec> Daemon::topics() const {
    auto all = kafka::omnibus_topics(config_.kafka);
    if (config_.pipeline.enabled)
        for (auto& t : kafka::pipeline_topics(config_.kafka)) all.push_back(std::move(t));
    return all;
}

void Daemon::start_pipeline() {
    pipeline::identity::IdentityService* svc = identity();
    if (!svc) return;
    const auto& k = config_.kafka;
    const std::string source = "/omnibus/instances/" + instance_origin();

    pipeline::history::ConversationStageOptions co;
    co.group_id = k.group_id + ".conversation";
    co.input_topic = k.topic_prefix + "pipeline.customer";
    co.changelog_topic = kafka::changelog_topic(k, "history").name;
    co.outbox_topic = k.topic_prefix + "outbox.ai";
    co.delivery_topic = k.topic_prefix + "delivery";
    co.human_outbox_topic = k.topic_prefix + "outbox.human";
    co.deadletter_topic = k.topic_prefix + "deadletter";
    co.store_dir = config_.state_dir + "/history";
    co.history = config_.pipeline.history;
    co.partition_count = k.partitions;
    co.source = source;
    {
        std::shared_ptr<const pipeline::classify::Classifier> classifier = pipeline::classify::Classifier::builtin();
        if (!config_.pipeline.classify_rules_file.empty()) {
            auto rules = pipeline::classify::Classifier::load_file(
                resolve_beside(config_path_, config_.pipeline.classify_rules_file));
            if (!rules.ok()) {
                lg.error("classification rules cannot be loaded", {{"problems", rules.report()}});
                std::lock_guard lock(topics_mu_);
                identity_error_ = "classification rules cannot be loaded: " + rules.report();
                return;
            }
            classifier = rules.classifier;
        }
        // Each channel's `language`, for messages too short to tell and customers without an earlier one.
        std::map<std::string, std::string, std::less<>> channel_languages;
        for (const auto& ch : config_.channels)
            if (ch.has("language")) channel_languages.emplace(ch.name(), ch.string("language"));
        co.classify = [classifier, langs = std::move(channel_languages)](envelope::Envelope& env,
                                                                        const std::string& previous) {
            auto it = langs.find(env.channel.name);
            classifier->apply(env, previous, it == langs.end() ? std::string_view{} : std::string_view(it->second));
        };
    }
    if (!config_.pipeline.routing_rules_file.empty()) {
        // Checked when the config was loaded; a file changed since then fails here, loudly.
        auto rules = pipeline::route::Router::load_file(resolve_beside(config_path_, config_.pipeline.routing_rules_file));
        if (!rules.ok()) {
            lg.error("routing rules cannot be loaded", {{"problems", rules.report()}});
            std::lock_guard lock(topics_mu_);
            identity_error_ = "routing rules cannot be loaded: " + rules.report();
            return;
        }
        co.router = rules.router;
    }
    // The stages stop before the identity service (shutdown), so the pointer outlives them.
    co.customer = [svc](std::string_view id) -> std::optional<pipeline::history::CustomerRef> {
        auto c = svc->customer_shared(id);
        if (!c) return std::nullopt;
        return pipeline::history::CustomerRef{c->id, c->aliases, {c->attributes.begin(), c->attributes.end()}};
    };
    if (k.embedded) {
        // As with the identity store: the embedded cluster's changelog is new at every start.
        std::error_code ec;
        std::filesystem::remove_all(co.store_dir, ec);
    }

    pipeline::identity::ResolveStageOptions ro;
    ro.group_id = k.group_id + ".identity";
    ro.input_topic = k.topic_prefix + "inbound";
    ro.output_topic = co.input_topic;
    ro.deadletter_topic = co.deadletter_topic;
    ro.identity = config_.pipeline.identity;

    pipeline::history::ReplyIntakeOptions io;
    io.group_id = k.group_id + ".replies";
    io.input_topic = k.topic_prefix + "replies";
    io.output_topic = co.input_topic;
    io.deadletter_topic = co.deadletter_topic;
    io.survivor = [svc](std::string_view id) -> std::optional<std::string> {
        auto c = svc->customer(id);
        if (!c) return std::nullopt;
        return c->id;
    };

    std::unique_ptr<InstanceDirectory> directory;
    std::unique_ptr<pipeline::history::ConversationStage> conversation;
    std::unique_ptr<pipeline::identity::ResolveStage> resolve;
    std::unique_ptr<pipeline::history::ReplyIntake> replies;
    try {
        directory = std::make_unique<InstanceDirectory>(
            k, InstanceDirectoryOptions{k.topic_prefix + "instances", instance_origin(), admin_url_, k.partitions},
            *producer_, metrics_);
        directory->announce({});
        // The directory is stopped after the stage (stop_pipeline), so the pointer outlives it.
        co.on_partitions_changed = [dir = directory.get()](std::vector<int> held) { dir->announce(std::move(held)); };
        // The stages' producers batch with pipeline.producer_linger_ms.
        kafka::KafkaSettings pk = k;
        pk.linger = config_.pipeline.producer_linger;
        if (pk.linger != k.linger && !pipeline_producer_)
            pipeline_producer_ = std::make_unique<kafka::Producer>(pk, metrics_, metrics::Labels{{"producer", "pipeline"}});
        kafka::Producer& out = pipeline_producer_ ? *pipeline_producer_ : *producer_;
        if (!start_transactions(pk)) return;
        co.transactional_producer = transactions_.load() ? txn_producer_.get() : nullptr;
        co.transaction_interval = config_.pipeline.transaction_interval;
        conversation = std::make_unique<pipeline::history::ConversationStage>(k, std::move(co), out, metrics_);
        resolve = std::make_unique<pipeline::identity::ResolveStage>(k, std::move(ro), *svc, out, metrics_);
        replies = std::make_unique<pipeline::history::ReplyIntake>(k, std::move(io), out, metrics_);
    } catch (const std::exception& e) {
        lg.error("pipeline stages cannot start", {{"error", e.what()}});
        std::lock_guard lock(topics_mu_);
        identity_error_ = std::string("pipeline stages cannot start: ") + e.what();
        return;
    }
    std::lock_guard topics(topics_mu_);
    if (stopping_) return;  // they stop as they go
    std::unique_lock lock(identity_mu_);
    directory_ = std::move(directory);
    conversation_ = std::move(conversation);
    resolve_ = std::move(resolve);
    replies_ = std::move(replies);
    pipeline_started_ = true;
    lg.info("pipeline started", {{"groups", k.group_id + ".identity," + k.group_id + ".conversation," +
                                                k.group_id + ".replies"},
                                 {"transactions", transactions_.load()}});
}

bool Daemon::start_transactions(const kafka::KafkaSettings& pk) {
    using T = pipeline::PipelineSettings::Transactions;
    const T mode = config_.pipeline.transactions;
    transactions_ = false;
    if (mode == T::off) return true;
    if (mode == T::automatic && pk.embedded) {
        lg.info("pipeline transactions off: the embedded cluster does not implement them (pipeline.transactions: auto)");
        return true;
    }
    if (txn_producer_) {  // made by an earlier start of the pipeline
        transactions_ = true;
        return true;
    }
    // One transactional id per stage and instance: a restarted instance has a new pid, and the
    // group's generation (sent with the offsets) fences a stalled old member's commits.
    const std::string id = pk.group_id + ".conversation." + instance_origin();
    auto producer = std::make_unique<kafka::Producer>(pk, metrics_, metrics::Labels{{"producer", "transactional"}}, id);
    std::string error;
    for (int attempt = 1;; ++attempt) {
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
        error = producer->init_transactions(pk.admin_timeout, &code);
        if (error.empty()) {
            txn_producer_ = std::move(producer);
            transactions_ = true;
            return true;
        }
        const bool refused = code == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
                             code == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED ||
                             code == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED || producer->fatal();
        if (refused || attempt == 3) break;
        lg.warn("pipeline transactions not ready yet; trying again", {{"attempt", attempt}, {"error", error}});
        std::unique_lock lock(topics_mu_);
        if (topics_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return false;
    }
    if (mode == T::automatic) {
        lg.warn("pipeline transactions off: the cluster did not give them (pipeline.transactions: auto); the "
                "conversation stage relies on deduplication by message id alone",
                {{"error", error}});
        return true;
    }
    lg.error("pipeline transactions unavailable (pipeline.transactions: on); the pipeline does not start",
             {{"error", error}});
    std::lock_guard lock(topics_mu_);
    identity_error_ = "pipeline transactions unavailable: " + error;
    return false;
}

bool Daemon::pipeline_failed() const {
    std::shared_lock lock(identity_mu_);
    return conversation_ && conversation_->failed();
}

void Daemon::stop_pipeline() {
    std::unique_ptr<pipeline::identity::ResolveStage> resolve;
    std::unique_ptr<pipeline::history::ConversationStage> conversation;
    std::unique_ptr<pipeline::history::ReplyIntake> replies;
    std::unique_ptr<InstanceDirectory> directory;
    {
        std::unique_lock lock(identity_mu_);  // waits for handlers using them
        resolve = std::move(resolve_);
        conversation = std::move(conversation_);
        replies = std::move(replies_);
        directory = std::move(directory_);
    }
    // The three consumers leave their groups at the same time: each close is bounded by
    // kafka.close_timeout (= shutdown.timeout), and one after the other they could take three
    // times that (a mock-cluster group whose JoinGroup holds a LeaveGroup back takes all of it).
    // What the resolve stage still finishes reaches the conversation stage's topic, which its
    // next owner (or this instance after a restart) processes.
    std::thread replies_stop([&] {
        if (replies) replies->stop();
    });
    std::thread resolve_stop([&] {
        if (resolve) resolve->stop();
    });
    if (conversation) conversation->stop();
    replies_stop.join();
    resolve_stop.join();
    // Last, once nothing is held any more: the tombstone (sent by the producer's flush) tells
    // the other instances this one is gone.
    if (directory) directory->stop();
}

bool Daemon::with_history(const std::function<void(pipeline::history::ConversationStage&)>& fn) const {
    std::shared_lock lock(identity_mu_);
    if (!conversation_) return false;
    fn(*conversation_);
    return true;
}

void Daemon::stop_identity() {
    std::unique_ptr<pipeline::identity::IdentityService> svc;
    {
        std::unique_lock lock(identity_mu_);  // waits for handlers using it
        svc = std::move(identity_);
    }
    if (svc) svc->stop();  // its waiters hear "stopped"; nothing is produced after this
}

pipeline::identity::IdentityService* Daemon::identity() const {
    std::shared_lock lock(identity_mu_);
    return identity_.get();
}

bool Daemon::with_identity(const std::function<void(pipeline::identity::IdentityService&)>& fn) const {
    std::shared_lock lock(identity_mu_);
    if (!identity_) return false;
    fn(*identity_);
    return true;
}

bool Daemon::ready() const {
    return topics_ready_.load() && health_ && health_->reachable() &&
           (!config_.pipeline.enabled ||
            (identity_caught_up_.load() && pipeline_started_.load() && !pipeline_failed()));
}

std::vector<ReadinessCheck> Daemon::readiness() const {
    std::vector<ReadinessCheck> checks;
    if (health_) {
        auto h = health_->status();
        checks.push_back({"kafka", h.reachable, h.reachable ? std::to_string(h.brokers) + " brokers" : h.error});
    } else {
        checks.push_back({"kafka", false, "not started"});
    }
    std::string detail;
    {
        std::lock_guard lock(topics_mu_);
        detail = topics_error_;
    }
    checks.push_back({"topics", topics_ready_.load(), topics_ready_ ? "" : (detail.empty() ? "pending" : detail)});
    if (config_.pipeline.enabled) {
        const bool ok = identity_caught_up_.load();
        std::string why;
        if (!ok) {
            std::lock_guard lock(topics_mu_);
            why = identity_error_.empty() ? "waiting for the topics" : identity_error_;
        }
        checks.push_back({"identity", ok, why});
        const bool stages = pipeline_started_.load();
        std::string stage_why;
        if (!stages && ok) {
            std::lock_guard lock(topics_mu_);
            stage_why = identity_error_.empty() ? "starting" : identity_error_;
        } else if (!stages) {
            stage_why = "waiting for the identity service";
        }
        if (stages && pipeline_failed())
            checks.push_back({"pipeline", false,
                              "the conversation stage stopped: its transactional producer was fenced or failed "
                              "(restart the instance)"});
        else
            checks.push_back({"pipeline", stages, stage_why});
    }
    return checks;
}

uint16_t Daemon::admin_port() const { return admin_ ? admin_->port() : 0; }
uint16_t Daemon::edge_port() const { return edge_ ? edge_->port() : 0; }

std::string Daemon::status_json() const {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("version");
    w.String(OMNIBUS_VERSION);
    w.Key("started_at");
    w.String(rfc3339(started_wall_).c_str());
    w.Key("uptime_seconds");
    w.Double(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
    w.Key("config");
    w.String(config_path_.c_str());
    w.Key("ready");
    w.Bool(ready());
    w.Key("kafka");
    w.StartObject();
    w.Key("embedded");
    w.Bool(config_.kafka.embedded);
    w.Key("bootstrap_servers");
    w.String(config_.kafka.brokers.c_str());
    if (health_) {
        auto h = health_->status();
        w.Key("reachable");
        w.Bool(h.reachable);
        w.Key("brokers");
        w.Int(h.brokers);
        if (!h.reachable && !h.error.empty()) {
            w.Key("error");
            w.String(h.error.c_str());
        }
    }
    w.Key("topics_ready");
    w.Bool(topics_ready_.load());
    w.Key("topics");
    w.StartArray();
    for (const auto& t : topics()) w.String(t.name.c_str());
    w.EndArray();
    w.Key("producer_in_flight");
    w.Uint64(producer_ ? producer_->in_flight() : 0);
    w.EndObject();
    w.Key("identity");
    w.StartObject();
    w.Key("enabled");
    w.Bool(config_.pipeline.enabled);
    if (config_.pipeline.enabled) {
        std::optional<std::int64_t> offset;
        with_identity([&](pipeline::identity::IdentityService& svc) { offset = svc.applied_offset(); });
        w.Key("applied_offset");
        if (offset) w.Int64(*offset);
        else w.Null();
        w.Key("caught_up");
        w.Bool(identity_caught_up_.load());
    }
    w.EndObject();
    if (config_.pipeline.enabled) {
        w.Key("pipeline");
        w.StartObject();
        w.Key("started");
        w.Bool(pipeline_started_.load());
        w.Key("transactions");  // pipeline.transactions as it turned out (auto: on unless embedded or refused)
        w.Bool(transactions_.load());
        w.Key("failed");
        w.Bool(pipeline_failed());
        w.EndObject();
    }
    if (edge_) {
        w.Key("edge");
        w.StartObject();
        w.Key("listen");
        w.String((config_.edge.host + ":" + std::to_string(edge_->port())).c_str());
        w.Key("tls");
        w.Bool(edge_->tls());
        w.Key("connections");
        w.Uint64(edge_->connections());
        w.EndObject();
    }
    w.Key("channels");
    w.StartArray();
    for (const auto& c : config_.channels) {
        w.StartObject();
        w.Key("name");
        w.String(c.name().c_str());
        w.Key("type");
        w.String(c.type().c_str());
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

void Daemon::reload() {
    systemd::notify_reloading();
    auto result = load_daemon_config(config_path_, registry_);
    if (!result.ok()) {
        for (const auto& d : result.diagnostics)
            lg.error("reload refused: invalid config; still running on the old one", {{"problem", d.to_string()}});
        systemd::notify_reloaded(ready() ? "ready" : "running; waiting for Kafka");
        return;
    }
    DaemonConfig next = to_daemon_config(*result.config);
    std::vector<std::string> applied, needs_restart;
    for (const auto& path : config::diff(config_.root, next.root)) {
        if (reloadable(path)) applied.push_back(path);
        else needs_restart.push_back(path);
    }
    for (const auto& path : applied) {
        if (path == "log.level") {
            config_.log_level = next.log_level;
            log::set_level(next.log_level);
        } else if (path == "admin.token") {
            config_.admin.token = next.admin.token;
            admin_->set_token(next.admin.token);
        }
    }
    for (const auto& path : needs_restart)
        lg.warn("reload: this change needs a restart; still running on the old value", {{"option", path}});
    std::string applied_list;
    for (const auto& p : applied) applied_list += (applied_list.empty() ? "" : ",") + p;
    lg.info("reloaded", {{"applied", applied_list}, {"needs_restart", needs_restart.size()}});
    systemd::notify_reloaded(ready() ? "ready" : "running; waiting for Kafka");
}

void Daemon::shutdown() {
    if (shut_down_) return;
    shut_down_ = true;
    auto t0 = std::chrono::steady_clock::now();
    systemd::notify_stopping();
    lg.info("shutting down", {{"timeout_ms", config_.shutdown_timeout.count()}});

    // 1. Stop taking work from outside: the edge stops accepting and lets the
    //    requests in flight finish (their answers wait for Kafka acks); the
    //    topic keeper stops (it may be starting the delivery dispatcher); the
    //    dispatcher gives the channels' queued replies back to Kafka and commits
    //    what was delivered; then the channels stop their own work.
    if (producer_) producer_->serve_deliveries_on_own_thread();  // before the edge's workers stop
    if (edge_) edge_->stop();
    {
        std::lock_guard lock(topics_mu_);
        stopping_ = true;
    }
    topics_cv_.notify_all();
    if (topic_keeper_.joinable()) topic_keeper_.join();
    if (dispatcher_) dispatcher_->stop();
    for (auto it = channels_.rbegin(); it != channels_.rend(); ++it) (*it)->stop();
    // 2. The identity service stops reading and writing the log (before the producer it writes
    //    with is flushed); admin requests waiting for an outcome are answered 503.
    stop_pipeline();
    stop_identity();
    // What is left of shutdown.timeout, for the producers' flushes.
    auto budget_left = [&] {
        return std::max(config_.shutdown_timeout - std::chrono::duration_cast<std::chrono::milliseconds>(
                                                       std::chrono::steady_clock::now() - t0),
                        std::chrono::milliseconds(0));
    };
    txn_producer_.reset();  // after the stages: its last transaction was committed at their revocation
    if (pipeline_producer_) {
        if (size_t n = pipeline_producer_->flush(budget_left()))
            lg.error("shutdown: pipeline records not acknowledged in time were reported failed", {{"count", n}});
        pipeline_producer_.reset();
    }
    // 3. Flush what the channels produced: every event is acknowledged or reported failed.
    size_t left = 0;
    if (producer_) {
        left = producer_->flush(budget_left());
    }
    dispatcher_.reset();
    channels_.clear();
    producer_.reset();  // purges what is left; every callback has run
    health_.reset();
    if (forwarder_) forwarder_->stop();  // handlers waiting for another instance answer now
    if (admin_) admin_->stop();
    embedded_.reset();
    auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (left) lg.error("shutdown: events not acknowledged in time were reported failed", {{"count", left}});
    lg.info("stopped", {{"seconds", took}});
}

}  // namespace omnibus::daemon
