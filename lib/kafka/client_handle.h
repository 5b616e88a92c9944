// Internal to lib/kafka: RAII owners of librdkafka's C handles, and the callbacks every client
// installs (librdkafka log lines into the JSON logger, broker-level errors into health state).
#pragma once

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kafka/client_config.h"

namespace omnibus::kafka::detail {

struct ConfDeleter {
    void operator()(rd_kafka_conf_t* p) const { rd_kafka_conf_destroy(p); }
};
struct HandleDeleter {
    void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct QueueDeleter {
    void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
};
struct EventDeleter {
    void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
};
struct PartitionListDeleter {
    void operator()(rd_kafka_topic_partition_list_t* p) const { rd_kafka_topic_partition_list_destroy(p); }
};
struct ErrorDeleter {
    void operator()(rd_kafka_error_t* p) const { rd_kafka_error_destroy(p); }
};
struct MessageDeleter {
    void operator()(rd_kafka_message_t* p) const { rd_kafka_message_destroy(p); }
};
struct MetadataDeleter {
    void operator()(const rd_kafka_metadata_t* p) const { rd_kafka_metadata_destroy(p); }
};
struct HeadersDeleter {
    void operator()(rd_kafka_headers_t* p) const { rd_kafka_headers_destroy(p); }
};

using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

// State the librdkafka callbacks of one client reach through the handle's opaque. It must
// outlive the rd_kafka_t (declare it before the HandlePtr member). Written from librdkafka's
// threads and the client's poll thread, read from anywhere: hence atomics only.
struct ClientContext {
    std::string role;                  // "producer", "consumer", "admin", "health", "embedded"
    std::vector<std::string> secrets;  // values redacted from librdkafka's log lines
    void* owner = nullptr;             // the Producer / Consumer, for their own callbacks
    std::atomic<bool> all_brokers_down{false};
    std::atomic<bool> fatal{false};
};

// Values of `client` whose names look like credentials (password, secret, key, token, jaas...).
std::vector<std::string> secret_values(const Properties& props);

// Replaces every occurrence of each secret in `text` with "***".
std::string redact(std::string text, const std::vector<std::string>& secrets);

// rd_kafka_conf_set for every property; throws ConfigError (no values in the message).
ConfPtr make_conf(const Properties& props);

// Installs log_cb, error_cb and the opaque, then rd_kafka_new. Throws ConfigError on failure.
HandlePtr new_handle(rd_kafka_type_t type, ConfPtr conf, ClientContext& ctx);

// The ClientContext of a handle made by new_handle.
inline ClientContext& context_of(rd_kafka_t* rk) { return *static_cast<ClientContext*>(rd_kafka_opaque(rk)); }

// A partition list of (topic, partition) pairs, in order.
PartitionListPtr to_list(const std::vector<TopicPartition>& parts);
std::vector<TopicPartition> from_list(const rd_kafka_topic_partition_list_t* list);

}  // namespace omnibus::kafka::detail
