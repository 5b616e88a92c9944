// Creates every topic omnibusd uses (the public ones and the pipeline's internal ones) on a
// test's own embedded cluster, with `partitions` each, before daemons are pointed at it.
#pragma once

#include "kafka/embedded_cluster.h"
#include "kafka/topics.h"

namespace omnibus::test {

inline void create_omnibus_topics(kafka::EmbeddedCluster& cluster, int partitions) {
    kafka::KafkaSettings ks;
    ks.partitions = partitions;
    ks.replication_factor = 1;
    for (const auto& t : kafka::omnibus_topics(ks)) cluster.create_topic(t.name, t.partitions);
    for (const auto& t : kafka::pipeline_topics(ks)) cluster.create_topic(t.name, t.partitions);
}

}  // namespace omnibus::test
