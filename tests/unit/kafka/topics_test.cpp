// The omnibus topic set derived from KafkaSettings.
#include <catch2/catch.hpp>

#include "kafka/topics.h"

using namespace omnibus::kafka;

TEST_CASE("omnibus topics from the prefix", "[kafka][topics]") {
    KafkaSettings s;
    s.partitions = 12;
    s.replication_factor = 3;
    std::vector<TopicSpec> topics = omnibus_topics(s);
    std::vector<std::string> names;
    for (const auto& t : topics) names.push_back(t.name);
    CHECK(names == std::vector<std::string>{"omnibus.inbound", "omnibus.identity", "omnibus.outbox.ai",
                                            "omnibus.outbox.human", "omnibus.replies", "omnibus.delivery",
                                            "omnibus.events", "omnibus.deadletter"});
    for (const auto& t : topics) {
        INFO(t.name);
        CHECK(t.replication_factor == 3);
        if (t.name == "omnibus.identity") {
            CHECK(t.partitions == 1);
            CHECK(t.exact_partitions);
            CHECK(t.config.at("cleanup.policy") == "compact");
            CHECK(t.config.at("min.compaction.lag.ms") == "604800000");
        } else {
            CHECK(t.partitions == 12);
            CHECK(t.config.empty());
        }
    }
}

TEST_CASE("custom prefix and changelog topics", "[kafka][topics]") {
    KafkaSettings s;
    s.topic_prefix = "shop1.";
    CHECK(omnibus_topics(s).front().name == "shop1.inbound");
    TopicSpec cl = changelog_topic(s, "history");
    CHECK(cl.name == "shop1.changelog.history");
    CHECK(cl.partitions == s.partitions);
    CHECK(cl.config.at("cleanup.policy") == "compact");
}

TEST_CASE("the pipeline's internal topics: its input, the history changelog and the instances directory",
          "[kafka][topics]") {
    KafkaSettings s;
    s.topic_prefix = "shop1.";
    s.partitions = 12;
    s.replication_factor = 3;
    auto topics = pipeline_topics(s);
    REQUIRE(topics.size() == 3);
    CHECK(topics[0].name == "shop1.pipeline.customer");
    CHECK(topics[1].name == "shop1.changelog.history");
    for (const auto& t : {topics[0], topics[1]}) {
        CHECK(t.partitions == 12);
        CHECK(t.exact_partitions);
    }
    // One record per live instance, read whole by every instance: one partition, one order.
    const TopicSpec& instances = topics[2];
    CHECK(instances.name == "shop1.instances");
    CHECK(instances.partitions == 1);
    CHECK(instances.exact_partitions);
    CHECK(instances.replication_factor == 3);
    CHECK(instances.config.at("cleanup.policy") == "compact");
}
