// KafkaSettings: what the daemon's config fills in for the Kafka layer (kafka: block of the YAML).
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <map>
#include <string>

#include "config/secret.h"

namespace omnibus::kafka {

struct KafkaSettings {
    // Comma-separated bootstrap list ("host:9092,host2:9092"). With `embedded` the daemon
    // starts an EmbeddedCluster and puts its bootstrap_servers() here.
    std::string brokers;
    bool embedded = false;
    int embedded_brokers = 1;

    // librdkafka properties passed through unchanged (security.protocol, sasl.*, ssl.*,
    // compression.type, ...). Values may be secrets: they are never logged or echoed.
    // Properties the layer owns are rejected here (see client_config.h, reserved_properties()).
    std::map<std::string, Secret> client;

    std::string topic_prefix = "omnibus.";
    int partitions = 6;
    int replication_factor = 3;

    std::string client_id = "omnibusd";
    // Consumer groups are named <group_id>.<role> (e.g. omnibus.delivery): instances with the
    // same group_id share the work; a second deployment on the same cluster needs its own.
    std::string group_id = "omnibus";

    // Producer: how long librdkafka keeps retrying a record before its callback reports failure.
    std::chrono::milliseconds message_timeout{30000};
    // Producer batching: small enough for a p99 target of 10 ms, large enough to batch at 25k/s.
    std::chrono::microseconds linger{250};

    // Upper bound of ensure_topics() and of one health probe: the daemon retries in the background.
    std::chrono::milliseconds admin_timeout{5000};

    // Upper bound of Producer/Consumer shutdown (flush, final commit, leaving the group).
    std::chrono::milliseconds close_timeout{10000};

    // Consumer group membership.
    std::chrono::milliseconds session_timeout{10000};
    std::chrono::milliseconds heartbeat_interval{1000};
    // Stored offsets are committed in the background this often, and synchronously on
    // revoke and on close.
    std::chrono::milliseconds commit_interval{1000};
};

struct TopicPartition {
    std::string topic;
    int32_t partition = 0;
    friend auto operator<=>(const TopicPartition&, const TopicPartition&) = default;
    friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
};

}  // namespace omnibus::kafka
