// librdkafka property sets built from KafkaSettings, and the check of user-supplied properties
// behind `omnibusd --check-config`. Pure functions: no handles, no network.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/secret.h"
#include "kafka/settings.h"

namespace omnibus::kafka {

// Property name → value, as handed to rd_kafka_conf_set. Every value is a Secret so that no
// property set can be printed with its values by accident.
using Properties = std::map<std::string, Secret>;

// A property set librdkafka refused, or a reserved property in KafkaSettings::client.
// what() names the property and never contains its value.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Properties the Kafka layer sets itself (bootstrap.servers, client.id, group.id,
// enable.idempotence, acks, message.timeout.ms, linger.ms, partition.assignment.strategy,
// enable.auto.offset.store, ...). Naming one in KafkaSettings::client is a config error, so
// idempotence and acks=all cannot be turned off silently; the only exceptions are
// enable.idempotence=true and acks=all/-1, the values the layer enforces anyway.
struct ReservedProperty {
    std::string_view name;
    std::string_view why;  // "set from kafka.brokers", "always true", ...
};
const std::vector<ReservedProperty>& reserved_properties();

// The full property sets of the three kinds of client. The user's `client` map is applied
// over the layer's defaults (reconnect backoff, auto.offset.reset, ...) and under the
// enforced properties. Throw ConfigError when `client` names a reserved property.
// A transactional_id makes a transactional producer (transactional.id); a transactional
// consumer commits only through its producer's transactions (enable.auto.commit=false).
Properties producer_properties(const KafkaSettings& s, const std::string& transactional_id = {});
Properties consumer_properties(const KafkaSettings& s, const std::string& group_id, bool transactional = false);
Properties admin_properties(const KafkaSettings& s);

// Checks a kafka.client map: reserved names, unknown property names and values librdkafka
// rejects (rd_kafka_conf_set on a scratch conf). One message per problem, each starting with
// the property name; the value is never part of a message (it may be a password).
// Empty means valid. Errors that librdkafka only finds when a client starts (a missing CA
// file, an unsupported SASL mechanism) surface at start-up instead.
std::vector<std::string> validate_client_properties(const std::map<std::string, Secret>& client);

}  // namespace omnibus::kafka
