// librdkafka property sets from KafkaSettings, and validation of kafka.client (see client_config.h).
#include "kafka/client_config.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdio>

#include "kafka/client_handle.h"

namespace omnibus::kafka {
namespace {

const ReservedProperty* find_reserved(std::string_view name) {
    const auto& all = reserved_properties();
    auto it = std::find_if(all.begin(), all.end(), [&](const ReservedProperty& r) { return r.name == name; });
    return it == all.end() ? nullptr : &*it;
}

// Setting a reserved property to the value the layer enforces anyway is harmless.
bool is_enforced_value(std::string_view name, const std::string& value) {
    if (name == "enable.idempotence") return value == "true";
    if (name == "acks" || name == "request.required.acks") return value == "all" || value == "-1";
    return false;
}

std::string reserved_message(const ReservedProperty& r) {
    return std::string(r.name) + ": managed by omnibus (" + std::string(r.why) + "); remove it from kafka.client";
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }

// librdkafka's linger.ms is a double: "0.5", "1", "2.25".
std::string fractional_ms(std::chrono::microseconds d) {
    std::string s = std::to_string(d.count() / 1000);
    if (const auto frac = d.count() % 1000; frac != 0) {
        char buf[8];
        std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
        s += buf;
        while (s.back() == '0') s.pop_back();
    }
    return s;
}

// Layer defaults, then the user's map (reserved names rejected), then `enforced` on top.
Properties merge(const KafkaSettings& s, Properties defaults, const Properties& enforced) {
    for (const auto& [name, value] : s.client) {
        if (const ReservedProperty* r = find_reserved(name)) {
            if (!is_enforced_value(name, value.reveal())) throw ConfigError(reserved_message(*r));
            continue;
        }
        defaults[name] = value;
    }
    for (const auto& [name, value] : enforced) defaults[name] = value;
    return defaults;
}

Properties common_defaults(const KafkaSettings& s) {
    return {
        // Come back quickly after a broker outage (librdkafka's default caps the backoff at 10 s).
        {"reconnect.backoff.ms", Secret("100")},
        {"reconnect.backoff.max.ms", Secret("2000")},
        {"client.id", Secret(s.client_id)},
    };
}

}  // namespace

const std::vector<ReservedProperty>& reserved_properties() {
    static const std::vector<ReservedProperty> all = {
        {"bootstrap.servers", "set from kafka.brokers"},
        {"metadata.broker.list", "set from kafka.brokers"},
        {"client.id", "set from kafka.client_id"},
        {"group.id", "set per consumer group"},
        {"enable.idempotence", "always true"},
        {"acks", "always all"},
        {"request.required.acks", "always all"},
        {"transactional.id", "set per stage and instance when pipeline.transactions is on"},
        {"message.timeout.ms", "set from kafka.message_timeout"},
        {"delivery.timeout.ms", "set from kafka.message_timeout"},
        {"linger.ms", "set from kafka.linger_ms"},
        {"queue.buffering.max.ms", "set from kafka.linger_ms"},
        {"enable.auto.offset.store", "always false: offsets are stored after the handler is done"},
        {"enable.auto.commit", "true: stored offsets are committed in the background (false with transactions)"},
        {"auto.commit.interval.ms", "set from kafka.commit_interval"},
        {"partition.assignment.strategy", "always cooperative-sticky"},
        {"session.timeout.ms", "set from kafka.session_timeout"},
        {"heartbeat.interval.ms", "set from kafka.heartbeat_interval"},
    };
    return all;
}

Properties producer_properties(const KafkaSettings& s, const std::string& transactional_id) {
    Properties defaults = common_defaults(s);
    // Topics are created by ensure_topics() with the configured partitions, never by
    // producing to them. (Consumers default to false already. The mock cluster only speaks
    // Metadata < v4, where the flag cannot be sent: librdkafka warns on every metadata
    // request if it is set, so the embedded mode leaves it alone.)
    if (!s.embedded) defaults["allow.auto.create.topics"] = Secret("false");
    // librdkafka refuses a message.timeout.ms above transaction.timeout.ms (default 60 s).
    if (!transactional_id.empty())
        defaults["transaction.timeout.ms"] = Secret(ms(std::max(s.message_timeout, std::chrono::milliseconds(60000))));
    Properties enforced{
        {"bootstrap.servers", Secret(s.brokers)},
        {"enable.idempotence", Secret("true")},
        {"acks", Secret("all")},
        {"linger.ms", Secret(fractional_ms(s.linger))},
        {"message.timeout.ms", Secret(ms(s.message_timeout))},
    };
    if (!transactional_id.empty()) enforced["transactional.id"] = Secret(transactional_id);
    return merge(s, std::move(defaults), enforced);
}

Properties consumer_properties(const KafkaSettings& s, const std::string& group_id, bool transactional) {
    Properties defaults = common_defaults(s);
    defaults["auto.offset.reset"] = Secret("earliest");
    // The mock answers a Fetch that found nothing only when fetch.wait.max.ms is over, even
    // when records arrive meanwhile (a broker answers at once). With librdkafka's 500 ms, a
    // stage that had caught up waited that long for the next record at every hop.
    if (s.embedded) defaults["fetch.wait.max.ms"] = Secret("20");
    return merge(s, std::move(defaults),
                 {
                     {"bootstrap.servers", Secret(s.brokers)},
                     {"group.id", Secret(group_id)},
                     {"partition.assignment.strategy", Secret("cooperative-sticky")},
                     {"enable.auto.offset.store", Secret("false")},
                     {"enable.auto.commit", Secret(transactional ? "false" : "true")},
                     {"auto.commit.interval.ms", Secret(ms(s.commit_interval))},
                     {"session.timeout.ms", Secret(ms(s.session_timeout))},
                     {"heartbeat.interval.ms", Secret(ms(s.heartbeat_interval))},
                 });
}

Properties admin_properties(const KafkaSettings& s) {
    return merge(s, common_defaults(s), {{"bootstrap.servers", Secret(s.brokers)}});
}

std::vector<std::string> validate_client_properties(const std::map<std::string, Secret>& client) {
    std::vector<std::string> errors;
    detail::ConfPtr scratch(rd_kafka_conf_new());
    for (const auto& [name, value] : client) {
        if (const ReservedProperty* r = find_reserved(name)) {
            if (!is_enforced_value(name, value.reveal())) errors.push_back(reserved_message(*r));
            continue;
        }
        char errstr[512] = {0};
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(scratch.get(), name.c_str(), value.reveal().c_str(), errstr, sizeof errstr);
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            errors.push_back(name + ": unknown librdkafka property");
        } else if (res != RD_KAFKA_CONF_OK) {
            std::vector<std::string> secret{value.reveal()};
            errors.push_back(name + ": invalid value (" + detail::redact(errstr, secret) + ")");
        }
    }
    return errors;
}

}  // namespace omnibus::kafka
