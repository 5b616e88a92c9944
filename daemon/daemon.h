// The daemon: builds every component from a validated config, starts them in
// order, answers readiness and status, reloads on SIGHUP and drains on SIGTERM.
//
// Threads: start(), reload() and shutdown() are called by the main thread
// (the signal loop) only. readiness() and status_json() are called from admin
// server threads and read only atomics and components that are themselves
// thread-safe. The topic keeper thread owns the ensure-topics retries, and then
// creates the identity service and waits until it caught up with the log.
// The identity service is shared with the admin threads under identity_mu_:
// they hold it shared while they use it, shutdown takes it exclusively to stop it. The
// instance directory (who holds which history partition) is guarded the same way.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "connectors/delivery_dispatcher.h"
#include "connectors/registry.h"
#include "daemon/admin_forwarder.h"
#include "daemon/admin_server.h"
#include "daemon/customer_api.h"
#include "daemon/daemon_config.h"
#include "kafka/topics.h"
#include "metrics/metrics.h"

namespace omnibus::kafka {
class EmbeddedCluster;
class Producer;
class HealthProbe;
}  // namespace omnibus::kafka
namespace omnibus::pipeline::identity {
class IdentityService;
class ResolveStage;
}  // namespace omnibus::pipeline::identity
namespace omnibus::pipeline::history {
class ConversationStage;
class ReplyIntake;
}

namespace omnibus::daemon {

class InstanceDirectory;

class Daemon {
public:
    Daemon(std::string config_path, DaemonConfig config, const connectors::Registry& registry,
           metrics::Registry& metrics);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    // Starts Kafka (embedded or client side), the admin API and the channels.
    // Throws std::runtime_error when something cannot start at all (a port in
    // use, a channel that refuses its config). Kafka being unreachable is not
    // such a failure: the daemon runs, reports not-ready and keeps retrying.
    void start();

    // Re-reads the config file. Invalid: logged, old config kept. Valid: the
    // reloadable options are applied; every other change is logged as needing
    // a restart and the daemon keeps running on the old values.
    void reload();

    // Stops accepting, flushes the producer and stops everything, within
    // shutdown.timeout. Idempotent.
    void shutdown();

    bool ready() const;
    std::vector<ReadinessCheck> readiness() const;
    std::string status_json() const;
    const std::string& bootstrap_servers() const { return config_.kafka.brokers; }
    uint16_t admin_port() const;
    uint16_t edge_port() const;

    // The identity service, for the pipeline stages: null until the topic keeper created it
    // (pipeline.enabled, topics ready), and once shutdown stopped it. Stages started after it
    // exists and stopped before shutdown stops it may keep the pointer.
    pipeline::identity::IdentityService* identity() const;
    // Runs `fn` with the identity service, which shutdown cannot stop meanwhile; false when there
    // is none. For callers on other threads (admin handlers): keep `fn` short, never wait in it.
    bool with_identity(const std::function<void(pipeline::identity::IdentityService&)>& fn) const;
    // The same for the conversation stage (history), under the same lock.
    bool with_history(const std::function<void(pipeline::history::ConversationStage&)>& fn) const;

private:
    void keep_topics();     // topic keeper thread
    void start_delivery();  // once the topics exist and the channels are built (either thread)
    void start_identity();  // topic keeper thread, once the topics exist: create, then catch up
    void stop_identity();   // main thread, in shutdown
    void start_pipeline();
    // Makes txn_producer_ per pipeline.transactions; false when the pipeline must not start.
    bool start_transactions(const kafka::KafkaSettings& pk);
    bool pipeline_failed() const;  // a stage stopped for good (transactions fenced or failed)  // topic keeper thread, once the identity service caught up: the stages
    void stop_pipeline();   // main thread, in shutdown, before stop_identity()
    std::vector<kafka::TopicSpec> topics() const;  // what ensure_topics creates

    std::string config_path_;
    DaemonConfig config_;  // the running config; changed only by reload() on the main thread
    const connectors::Registry& registry_;
    metrics::Registry& metrics_;
    std::chrono::steady_clock::time_point started_;
    std::chrono::system_clock::time_point started_wall_;

    std::unique_ptr<kafka::EmbeddedCluster> embedded_;
    std::unique_ptr<kafka::Producer> producer_;
    // The pipeline stages' producer when pipeline.producer_linger_ms differs from kafka.linger_ms
    // (else they use producer_). Made by start_pipeline() on the topic keeper; gone after the stages.
    std::unique_ptr<kafka::Producer> pipeline_producer_;
    // The conversation stage's transactional producer (pipeline.transactions); made by
    // start_pipeline(), gone after the stages.
    std::unique_ptr<kafka::Producer> txn_producer_;
    std::atomic<bool> transactions_{false};  // the conversation stage runs with them (start_pipeline)
    std::unique_ptr<kafka::HealthProbe> health_;
    std::unique_ptr<AdminServer> admin_;
    std::unique_ptr<edge::EdgeServer> edge_;
    // Filled by start() before channels_started_; from then on read by the delivery dispatcher
    // and the identity log reader (erasures, forget()); cleared by shutdown after both stopped.
    std::vector<std::unique_ptr<connectors::Connector>> channels_;
    // Created by the topic keeper once the topics exist; guarded by topics_mu_ until shutdown.
    std::unique_ptr<connectors::DeliveryDispatcher> dispatcher_;
    bool channels_started_ = false;  // guarded by topics_mu_
    bool delivery_claimed_ = false;  // guarded by topics_mu_: start_delivery() ran its body

    std::atomic<bool> topics_ready_{false};
    mutable std::mutex topics_mu_;  // with topics_cv_: wakes the keeper for shutdown
    std::condition_variable topics_cv_;
    std::string topics_error_;  // guarded by topics_mu_
    bool stopping_ = false;     // guarded by topics_mu_
    std::thread topic_keeper_;
    std::atomic<bool> ready_logged_{false};
    bool shut_down_ = false;

    std::unique_ptr<CustomerApi> customer_api_;  // routes on admin_ when the pipeline is enabled
    std::unique_ptr<AdminForwarder> forwarder_;  // with customer_api_; stopped before admin_
    std::string admin_url_;  // what this instance advertises (admin.advertise or derived); "" none
    mutable std::shared_mutex identity_mu_;
    std::unique_ptr<pipeline::identity::IdentityService> identity_;  // guarded by identity_mu_
    // The stages (created after identity_, stopped before it), guarded by identity_mu_ too.
    std::unique_ptr<pipeline::history::ConversationStage> conversation_;
    std::unique_ptr<pipeline::identity::ResolveStage> resolve_;
    std::unique_ptr<pipeline::history::ReplyIntake> replies_;
    std::unique_ptr<InstanceDirectory> directory_;  // created before conversation_, stopped after it
    std::atomic<bool> pipeline_started_{false};
    std::atomic<bool> identity_caught_up_{false};  // wait_caught_up succeeded once
    std::string identity_error_;                   // guarded by topics_mu_: why it is not there yet
};

}  // namespace omnibus::daemon
