// Omnibus topic names and ensure_topics() (see topics.h).
#include "kafka/topics.h"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <map>

#include "kafka/client_config.h"
#include "kafka/client_handle.h"
#include "kafka/embedded_cluster.h"
#include "log/log.h"

namespace omnibus::kafka {
namespace {

constexpr log::Logger logger{"kafka"};
using Clock = std::chrono::steady_clock;

struct NewTopicDeleter {
    void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
};
struct AdminOptionsDeleter {
    void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
};

int ms_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

EnsureTopicsResult ensure_embedded(const std::vector<TopicSpec>& topics, EmbeddedCluster& cluster) {
    EnsureTopicsResult r;
    try {
        for (const auto& t : topics)
            (cluster.create_topic(t.name, t.partitions, t.replication_factor) ? r.created : r.existing).push_back(t.name);
    } catch (const std::exception& e) {
        r.error = e.what();
    }
    return r;
}

// Topic name → partition count of what the cluster has now.
EnsureTopicsResult existing_topics(rd_kafka_t* rk, const KafkaSettings& s, Clock::time_point deadline,
                                   std::map<std::string, int>& out) {
    EnsureTopicsResult r;
    const rd_kafka_metadata_t* raw = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &raw, ms_left(deadline));
    detail::MetadataPtr md(raw);
    if (err) {
        r.error = "Kafka not reachable at " + s.brokers + " within " + std::to_string(s.admin_timeout.count()) +
                  " ms: " + rd_kafka_err2str(err);
        return r;
    }
    for (int i = 0; i < md->topic_cnt; ++i) {
        const auto& t = md->topics[i];
        if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR) out[t.topic] = t.partition_cnt;
    }
    return r;
}

}  // namespace

std::vector<TopicSpec> omnibus_topics(const KafkaSettings& s) {
    auto topic = [&](std::string_view name) {
        return TopicSpec{s.topic_prefix + std::string(name), s.partitions, s.replication_factor, {}, false};
    };
    std::vector<TopicSpec> out;
    out.push_back(topic("inbound"));
    TopicSpec identity = topic("identity");
    identity.partitions = 1;
    identity.exact_partitions = true;
    // Compaction may only remove what every live instance has applied: records stay at least
    // 7 days (an instance whose store is older rebuilds it from the log; pipeline/identity),
    // tombstones as long again.
    identity.config = {{"cleanup.policy", "compact"},
                       {"min.compaction.lag.ms", "604800000"},
                       {"delete.retention.ms", "604800000"}};
    out.push_back(std::move(identity));
    for (std::string_view name : {"outbox.ai", "outbox.human", "replies", "delivery", "events", "deadletter"})
        out.push_back(topic(name));
    return out;
}

TopicSpec changelog_topic(const KafkaSettings& s, std::string_view store) {
    return TopicSpec{s.topic_prefix + "changelog." + std::string(store),
                     s.partitions,
                     s.replication_factor,
                     {{"cleanup.policy", "compact"}},
                     false};
}

std::vector<TopicSpec> pipeline_topics(const KafkaSettings& s) {
    TopicSpec customer{s.topic_prefix + "pipeline.customer", s.partitions, s.replication_factor, {}, true};
    TopicSpec history = changelog_topic(s, "history");
    history.exact_partitions = true;
    // Which instance holds which history partition and where its admin API is: one record per
    // live instance, read whole by every instance (one partition: one order).
    TopicSpec instances{s.topic_prefix + "instances", 1, s.replication_factor, {{"cleanup.policy", "compact"}}, true};
    return {std::move(customer), std::move(history), std::move(instances)};
}

EnsureTopicsResult ensure_topics(const KafkaSettings& s, const std::vector<TopicSpec>& topics,
                                 EmbeddedCluster* embedded) {
    if (embedded) return ensure_embedded(topics, *embedded);

    auto deadline = Clock::now() + s.admin_timeout;
    EnsureTopicsResult r;
    detail::ClientContext ctx;
    ctx.role = "admin";
    detail::HandlePtr rk;
    try {
        Properties props = admin_properties(s);
        ctx.secrets = detail::secret_values(props);
        rk = detail::new_handle(RD_KAFKA_PRODUCER, detail::make_conf(props), ctx);
    } catch (const std::exception& e) {
        r.error = e.what();
        return r;
    }

    std::map<std::string, int> existing;
    if (r = existing_topics(rk.get(), s, deadline, existing); !r.ok()) return r;

    std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
    std::vector<rd_kafka_NewTopic_t*> to_create;
    for (const auto& t : topics) {
        auto it = existing.find(t.name);
        if (it != existing.end()) {
            r.existing.push_back(t.name);
            if (it->second != t.partitions) {
                if (t.exact_partitions) {
                    r.error = "topic " + t.name + " has " + std::to_string(it->second) + " partitions; it must have " +
                              std::to_string(t.partitions);
                    return r;
                }
                logger.warn("existing topic has another partition count than configured",
                            {{"topic", t.name}, {"partitions", it->second}, {"configured", t.partitions}});
            }
            continue;
        }
        char errstr[512] = {0};
        owned.emplace_back(rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, t.replication_factor, errstr, sizeof errstr));
        if (!owned.back()) {
            r.error = "topic " + t.name + ": " + errstr;
            return r;
        }
        for (const auto& [k, v] : t.config) {
            if (rd_kafka_resp_err_t err = rd_kafka_NewTopic_set_config(owned.back().get(), k.c_str(), v.c_str())) {
                r.error = "topic " + t.name + ": config " + k + ": " + rd_kafka_err2str(err);
                return r;
            }
        }
        to_create.push_back(owned.back().get());
    }
    if (to_create.empty()) return r;

    std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter> options(
        rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
    char errstr[512] = {0};
    int left = std::max(ms_left(deadline), 1);
    rd_kafka_AdminOptions_set_request_timeout(options.get(), left, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(options.get(), left, errstr, sizeof errstr);
    detail::QueuePtr q(rd_kafka_queue_new(rk.get()));
    rd_kafka_CreateTopics(rk.get(), to_create.data(), to_create.size(), options.get(), q.get());
    // The request timeout bounds the answer; the margin only covers queueing of the result.
    detail::EventPtr ev(rd_kafka_queue_poll(q.get(), left + 1000));
    if (!ev) {
        r.error = "CreateTopics on " + s.brokers + ": no answer within " + std::to_string(s.admin_timeout.count()) + " ms";
        return r;
    }
    if (rd_kafka_resp_err_t err = rd_kafka_event_error(ev.get())) {
        r.error = "CreateTopics on " + s.brokers + ": " + rd_kafka_event_error_string(ev.get()) + " (" +
                  rd_kafka_err2name(err) + ")";
        return r;
    }
    size_t n = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &n);
    for (size_t i = 0; i < n; ++i) {
        std::string name = rd_kafka_topic_result_name(results[i]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            r.created.push_back(name);
        } else if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            r.existing.push_back(name);  // created by another instance meanwhile
        } else {
            const char* why = rd_kafka_topic_result_error_string(results[i]);
            if (!r.error.empty()) r.error += "; ";
            r.error += "cannot create topic " + name + ": " + (why ? why : rd_kafka_err2str(err));
        }
    }
    if (!r.created.empty()) logger.info("topics created", {{"count", r.created.size()}, {"brokers", s.brokers}});
    return r;
}

}  // namespace omnibus::kafka
