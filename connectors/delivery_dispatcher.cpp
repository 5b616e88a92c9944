// Consumes <prefix>delivery and hands each reply to its channel (see delivery_dispatcher.h).
#include "connectors/delivery_dispatcher.h"

#include <map>
#include <utility>

#include "envelope/envelope.h"
#include "kafka/dead_letter.h"
#include "log/log.h"

namespace omnibus::connectors {
namespace {

const log::Logger logger{"delivery"};
log::Throttle log_dead_letter_refused;  // per record while Kafka is out

}  // namespace

struct DeliveryDispatcher::Core : std::enable_shared_from_this<DeliveryDispatcher::Core> {
    std::map<std::string, Connector*, std::less<>> channels;
    kafka::Producer& producer;
    std::string deadletter_topic;
    metrics::Registry& metrics;
    metrics::Counter* dispatched;

    Core(kafka::Producer& p, metrics::Registry& m) : producer(p), metrics(m) {}

    void handle(const kafka::ConsumedRecord& rec, kafka::Completion done);
    void dead_letter(const kafka::ConsumedRecord& rec, std::string_view code, std::string reason,
                     kafka::Completion done);
    void release(const std::vector<kafka::TopicPartition>& parts) {
        for (auto& [name, channel] : channels) channel->release(parts);
    }
};

void DeliveryDispatcher::Core::dead_letter(const kafka::ConsumedRecord& in, std::string_view code,
                                           std::string reason, kafka::Completion done) {
    metrics.counter("omnibus_delivery_rejected_total", "Records on the delivery topic no channel could take, by reason",
                    {{"reason", std::string(code)}})
        .inc();
    logger.warn("delivery record dead-lettered",
                {{"reason", reason}, {"partition", in.partition}, {"offset", static_cast<long long>(in.offset)}});
    kafka::Record rec = kafka::dead_letter(in, deadletter_topic, code, std::move(reason));
    auto shared_done = std::make_shared<kafka::Completion>(std::move(done));
    producer.produce(std::move(rec), [shared_done](const kafka::DeliveryResult& r) {
        if (r.ok()) {
            shared_done->done();
        } else {
            // Not on the dead-letter topic: abandoned, the consumer hands it out
            // again after its retry backoff (or to the partition's next owner).
            std::uint64_t n = 0;
            if (log_dead_letter_refused.allow(n))
                logger.error("dead letter not taken by Kafka; the record will be read again",
                             {{"error", r.message}, {"occurrences", n}});
            shared_done->abandon();
        }
    });
}

void DeliveryDispatcher::Core::handle(const kafka::ConsumedRecord& rec, kafka::Completion done) {
    envelope::Result<envelope::Envelope> env = envelope::decode(rec.record);
    if (!env) return dead_letter(rec, "undecodable", "not a message envelope: " + env.error().to_string(), std::move(done));
    if (env->direction != envelope::Direction::outbound)
        return dead_letter(rec, "not_outbound", "an inbound message on the delivery topic", std::move(done));
    auto it = channels.find(env->channel.name);
    if (it == channels.end())
        return dead_letter(rec, "unknown_channel",
                           "no channel named \"" + env->channel.name + "\" delivers replies on this instance",
                           std::move(done));
    dispatched->inc();
    it->second->deliver(OutboundJob{rec, std::move(*env), std::move(done)});
}

DeliveryDispatcher::DeliveryDispatcher(const kafka::KafkaSettings& settings, DispatcherOptions options,
                                       std::vector<std::pair<std::string, Connector*>> channels,
                                       kafka::Producer& producer, metrics::Registry& metrics)
    : core_(std::make_shared<Core>(producer, metrics)) {
    for (auto& [name, channel] : channels) core_->channels.emplace(std::move(name), channel);
    core_->deadletter_topic = settings.topic_prefix + "deadletter";
    core_->dispatched = &metrics.counter("omnibus_delivery_dispatched_total",
                                         "Replies read from the delivery topic and handed to their channel");
    kafka::ConsumerOptions o;
    o.group_id = options.group_id + ".delivery";
    o.topics = {settings.topic_prefix + "delivery"};
    o.max_in_flight = options.max_in_flight;
    auto core = core_;
    o.async_handler = [core](const kafka::ConsumedRecord& rec, kafka::Completion done) {
        core->handle(rec, std::move(done));
    };
    o.on_revoked = [core](const std::vector<kafka::TopicPartition>& parts) { core->release(parts); };
    consumer_ = std::make_unique<kafka::Consumer>(settings, std::move(o), metrics);
}

DeliveryDispatcher::~DeliveryDispatcher() { stop(); }

void DeliveryDispatcher::stop() {
    if (consumer_) consumer_->stop();
}

bool DeliveryDispatcher::has_assignment() const { return consumer_ && consumer_->has_assignment(); }

}  // namespace omnibus::connectors
