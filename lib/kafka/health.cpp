// Kafka reachability probe for readiness (see health.h).
#include "kafka/health.h"

#include <algorithm>

#include "kafka/client_config.h"
#include "log/log.h"

namespace omnibus::kafka {
namespace {

constexpr log::Logger logger{"kafka"};
using Clock = std::chrono::steady_clock;

}  // namespace

HealthProbe::HealthProbe(const KafkaSettings& settings, std::chrono::milliseconds interval)
    : settings_(settings),
      interval_(interval),
      probe_timeout_(std::max(std::chrono::milliseconds(1), std::min(interval, settings.admin_timeout))) {
    ctx_.role = "health";
    health_.error = "not probed yet";
    Properties props = admin_properties(settings_);
    ctx_.secrets = detail::secret_values(props);
    rk_ = detail::new_handle(RD_KAFKA_PRODUCER, detail::make_conf(props), ctx_);
    thread_ = std::thread(&HealthProbe::run, this);
}

HealthProbe::~HealthProbe() {
    stop_.store(true);
    {
        detail::QueuePtr main_queue(rd_kafka_queue_get_main(rk_.get()));
        rd_kafka_queue_yield(main_queue.get());
    }
    thread_.join();
}

KafkaHealth HealthProbe::status() const {
    std::lock_guard lock(mu_);
    return health_;
}

bool HealthProbe::reachable() const {
    std::lock_guard lock(mu_);
    return health_.reachable;
}

void HealthProbe::publish(KafkaHealth h) {
    h.checked_at = Clock::now();
    bool was;
    {
        std::lock_guard lock(mu_);
        was = health_.reachable;
        health_ = h;
    }
    if (was != h.reachable) {
        if (h.reachable) logger.info("Kafka reachable", {{"brokers", h.brokers}});
        else logger.warn("Kafka unreachable", {{"brokers", settings_.brokers}, {"error", h.error}});
    }
}

void HealthProbe::probe() {
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_.get(), 0, nullptr, &raw, static_cast<int>(probe_timeout_.count()));
    detail::MetadataPtr md(raw);
    KafkaHealth h;
    if (err) {
        h.error = std::string("metadata request failed: ") + rd_kafka_err2str(err);
    } else {
        h.reachable = md->broker_cnt > 0;
        h.brokers = md->broker_cnt;
        if (!h.reachable) h.error = "no brokers in metadata";
        ctx_.all_brokers_down.store(false);
    }
    publish(std::move(h));
}

void HealthProbe::run() {
    while (!stop_.load()) {
        probe();
        auto next = Clock::now() + interval_;
        while (!stop_.load()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
            if (left <= 0) break;
            rd_kafka_poll(rk_.get(), static_cast<int>(std::min<long long>(left, 100)));
            if (ctx_.all_brokers_down.exchange(false)) {
                KafkaHealth h;
                h.error = "all brokers down";
                publish(std::move(h));
            }
        }
    }
}

}  // namespace omnibus::kafka
