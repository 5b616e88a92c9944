// The omnibus topic set and ensure_topics(): create what is missing, at start-up, in bounded time.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kafka/settings.h"

namespace omnibus::kafka {

class EmbeddedCluster;

struct TopicSpec {
    std::string name;
    int partitions = 1;
    int replication_factor = 1;
    std::map<std::string, std::string> config;  // topic configs, e.g. cleanup.policy=compact
    // An existing topic with another partition count is an error instead of a warning
    // (the identity log relies on being one total order).
    bool exact_partitions = false;

    friend bool operator==(const TopicSpec&, const TopicSpec&) = default;
};

// The topics of the design, named from kafka.topic_prefix: inbound, identity (1 partition,
// compacted), outbox.ai, outbox.human, replies, delivery, events, deadletter.
std::vector<TopicSpec> omnibus_topics(const KafkaSettings& s);

// The pipeline's internal topics: <prefix>pipeline.customer (messages re-keyed by customer
// id, the conversation stage's input), the history store's changelog, co-partitioned with
// it (both exact: a store per partition relies on the two counts being equal), and
// <prefix>instances (1 partition, compacted): which instance holds which history partition
// and where its admin API answers (daemon/instance_directory.h).
std::vector<TopicSpec> pipeline_topics(const KafkaSettings& s);

// The compacted changelog topic of a state store, co-partitioned with the input topics:
// <prefix>changelog.<store>.
TopicSpec changelog_topic(const KafkaSettings& s, std::string_view store);

struct EnsureTopicsResult {
    std::vector<std::string> created;
    std::vector<std::string> existing;
    std::string error;  // empty on success; says what failed and where
    bool ok() const { return error.empty(); }
};

// Creates every topic of `topics` that does not exist yet (CreateTopics; TOPIC_ALREADY_EXISTS
// counts as success), within kafka.admin_timeout in total. When Kafka is unreachable it
// returns an error after at most that bound; it never throws for runtime failures (the
// daemon retries in the background and reports not-ready meanwhile).
//
// With `embedded` the topics are created with rd_kafka_mock_topic_create, because the mock
// cluster does not answer CreateTopics; topic configs are ignored there (it never compacts).
EnsureTopicsResult ensure_topics(const KafkaSettings& s, const std::vector<TopicSpec>& topics,
                                 EmbeddedCluster* embedded = nullptr);

}  // namespace omnibus::kafka
