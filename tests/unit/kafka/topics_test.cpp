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
