// The delivery dispatcher: the one consumer of <prefix>delivery in a daemon.
// It reads the replies downstream wrote (through the pipeline), decodes each
// envelope and hands it to the channel its channel.name names
// (Connector::deliver); the channel completes it asynchronously, and only
// completed records have their offsets committed (kafka/consumer.h,
// asynchronous mode: many customers' replies are in flight at once, each
// customer's in order).
//
// Records that no channel here can deliver go to <prefix>deadletter as they
// came, with the reason in headers (omnibus_error, omnibus_error_code:
// undecodable, not_outbound, unknown_channel, channel_not_outbound), and are
// then committed: a bad record never blocks its partition. Every instance of
// a deployment runs the same channels, so any of them may own any partition.
//
// Group: <group_id>.delivery. Rebalances and stop() call release() on every
// channel with the partitions going away before the consumer waits for their
// open records (bounded by kafka.close_timeout) and commits.
//
// Threads: the consumer thread decodes and dispatches; dead-letter
// acknowledgements arrive on the producer's thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "connectors/registry.h"
#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"

namespace omnibus::connectors {

struct DispatcherOptions {
    std::string group_id = "omnibus";   // the consumer group is <group_id>.delivery
    std::size_t max_in_flight = 10000;  // replies handed out and not yet completed
};

class DeliveryDispatcher {
public:
    // `channels`: name → connector, only those whose delivers() is true. All
    // references must outlive the dispatcher. Starts consuming at once.
    DeliveryDispatcher(const kafka::KafkaSettings& settings, DispatcherOptions options,
                       std::vector<std::pair<std::string, Connector*>> channels, kafka::Producer& producer,
                       metrics::Registry& metrics);
    ~DeliveryDispatcher();  // stop()

    // Releases everything, commits and leaves the group. Idempotent.
    void stop();
    bool has_assignment() const;

    struct Core;

private:
    std::shared_ptr<Core> core_;
    std::unique_ptr<kafka::Consumer> consumer_;
};

}  // namespace omnibus::connectors
