// KafkaSettings → librdkafka properties, kafka.client validation, and librdkafka log routing.
#include <catch2/catch.hpp>

#include <mutex>
#include <string>
#include <vector>

#include "kafka/client_config.h"
#include "kafka/client_handle.h"
#include "log/log.h"

using namespace omnibus;
using namespace omnibus::kafka;

namespace {

std::string get(const Properties& p, const std::string& name) {
    auto it = p.find(name);
    return it == p.end() ? "<unset>" : it->second.reveal();
}

bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v)
        if (s.find(needle) != std::string::npos) return true;
    return false;
}

}  // namespace

TEST_CASE("producer properties enforce idempotence, acks=all and the settings", "[kafka][config]") {
    KafkaSettings s;
    s.brokers = "k1:9092,k2:9092";
    s.client_id = "omnibusd-test";
    s.message_timeout = std::chrono::milliseconds(12000);
    s.linger = std::chrono::milliseconds(3);
    s.client = {{"compression.type", Secret("lz4")}, {"reconnect.backoff.max.ms", Secret("5000")}};

    Properties p = producer_properties(s);
    CHECK(get(p, "bootstrap.servers") == "k1:9092,k2:9092");
    CHECK(get(p, "client.id") == "omnibusd-test");
    CHECK(get(p, "enable.idempotence") == "true");
    CHECK(get(p, "acks") == "all");
    CHECK(get(p, "linger.ms") == "3");
    s.linger = std::chrono::microseconds(500);
    CHECK(get(producer_properties(s), "linger.ms") == "0.5");
    s.linger = std::chrono::microseconds(2250);
    CHECK(get(producer_properties(s), "linger.ms") == "2.25");
    s.linger = std::chrono::microseconds(0);
    CHECK(get(producer_properties(s), "linger.ms") == "0");
    CHECK(get(p, "message.timeout.ms") == "12000");
    CHECK(get(p, "allow.auto.create.topics") == "false");
    CHECK(get(p, "compression.type") == "lz4");           // passed through
    CHECK(get(p, "reconnect.backoff.max.ms") == "5000");  // a user value beats a layer default
    s.embedded = true;  // the mock cluster cannot honour it and librdkafka would warn on every request
    CHECK(get(producer_properties(s), "allow.auto.create.topics") == "<unset>");

    // librdkafka accepts the whole set, and reads it back as set.
    detail::ConfPtr conf = detail::make_conf(p);
    char buf[64];
    size_t size = sizeof buf;
    REQUIRE(rd_kafka_conf_get(conf.get(), "enable.idempotence", buf, &size) == RD_KAFKA_CONF_OK);
    CHECK(std::string(buf) == "true");
}

TEST_CASE("consumer properties: cooperative-sticky, offsets stored by the layer", "[kafka][config]") {
    KafkaSettings s;
    s.brokers = "k1:9092";
    s.commit_interval = std::chrono::milliseconds(700);
    Properties p = consumer_properties(s, "omnibus-identity");
    CHECK(get(p, "group.id") == "omnibus-identity");
    CHECK(get(p, "partition.assignment.strategy") == "cooperative-sticky");
    CHECK(get(p, "enable.auto.offset.store") == "false");
    CHECK(get(p, "enable.auto.commit") == "true");
    CHECK(get(p, "auto.commit.interval.ms") == "700");
    CHECK(get(p, "auto.offset.reset") == "earliest");
    CHECK_NOTHROW(detail::make_conf(p));
    // Transactional: offsets go only with the producer's transactions.
    Properties t = consumer_properties(s, "omnibus-conversation", true);
    CHECK(get(t, "enable.auto.commit") == "false");
    CHECK(get(t, "enable.auto.offset.store") == "false");
    // A broker's long poll is librdkafka's to choose; the mock's is bounded (it never wakes early),
    // and kafka.client still decides.
    CHECK(get(p, "fetch.wait.max.ms") == "<unset>");
    s.embedded = true;
    CHECK(get(consumer_properties(s, "g"), "fetch.wait.max.ms") == "20");
    s.client["fetch.wait.max.ms"] = Secret("100");
    CHECK(get(consumer_properties(s, "g"), "fetch.wait.max.ms") == "100");
}

TEST_CASE("transactional.id comes from the layer, never from kafka.client", "[kafka][config]") {
    KafkaSettings s;
    s.brokers = "k1:9092";
    CHECK(get(producer_properties(s), "transactional.id") == "<unset>");
    Properties p = producer_properties(s, "omnibus.conversation.host-1:42");
    CHECK(get(p, "transactional.id") == "omnibus.conversation.host-1:42");
    CHECK(get(p, "enable.idempotence") == "true");
    CHECK(get(p, "transaction.timeout.ms") == "60000");
    CHECK_NOTHROW(detail::make_conf(p));
    // A message timeout above librdkafka's default transaction timeout raises it.
    s.message_timeout = std::chrono::minutes(2);
    CHECK(get(producer_properties(s, "t"), "transaction.timeout.ms") == "120000");
    CHECK_NOTHROW(detail::make_conf(producer_properties(s, "t")));
    s.message_timeout = std::chrono::seconds(30);
    s.client = {{"transactional.id", Secret("mine")}};
    CHECK_THROWS_WITH(producer_properties(s), Catch::Contains("transactional.id") && !Catch::Contains("mine"));
}

TEST_CASE("kafka.client cannot turn idempotence or acks=all off", "[kafka][config]") {
    KafkaSettings s;
    s.brokers = "k1:9092";

    s.client = {{"enable.idempotence", Secret("false")}};
    CHECK_THROWS_AS(producer_properties(s), ConfigError);
    CHECK_THROWS_WITH(producer_properties(s), Catch::Contains("enable.idempotence") && !Catch::Contains("false"));

    s.client = {{"acks", Secret("1")}};
    CHECK_THROWS_AS(producer_properties(s), ConfigError);

    // Spelling out the enforced values is fine.
    s.client = {{"enable.idempotence", Secret("true")}, {"acks", Secret("all")}};
    CHECK(get(producer_properties(s), "enable.idempotence") == "true");

    s.client = {{"bootstrap.servers", Secret("elsewhere:9092")}};
    CHECK_THROWS_WITH(producer_properties(s), Catch::Contains("kafka.brokers"));
}

TEST_CASE("validate_client_properties accepts a SASL_SSL set", "[kafka][config]") {
    std::map<std::string, Secret> client = {
        {"security.protocol", Secret("SASL_SSL")},
        {"sasl.mechanisms", Secret("SCRAM-SHA-512")},
        {"sasl.username", Secret("omnibus")},
        {"sasl.password", Secret("correct horse battery staple")},
        {"compression.type", Secret("zstd")},
        {"socket.keepalive.enable", Secret("true")},
    };
    CHECK(validate_client_properties(client).empty());
}

TEST_CASE("validate_client_properties names bad properties and never echoes values", "[kafka][config]") {
    const std::string secret = "hunter2-Very-Secret";
    std::map<std::string, Secret> client = {
        {"sasl.pasword", Secret(secret)},                 // typo: unknown property
        {"security.protocol", Secret(secret)},            // bad enum value
        {"socket.timeout.ms", Secret("not-a-number-" + secret)},  // bad integer
        {"enable.idempotence", Secret("false")},          // reserved
    };
    std::vector<std::string> errors = validate_client_properties(client);
    REQUIRE(errors.size() == 4);
    CHECK(any_contains(errors, "sasl.pasword: unknown"));
    CHECK(any_contains(errors, "security.protocol: invalid value"));
    CHECK(any_contains(errors, "socket.timeout.ms: invalid value"));
    CHECK(any_contains(errors, "enable.idempotence: managed by omnibus"));
    for (const auto& e : errors) {
        INFO(e);
        CHECK(e.find("hunter2") == std::string::npos);
    }
}

TEST_CASE("secrets are redacted from librdkafka text", "[kafka][config]") {
    Properties p = {{"sasl.password", Secret("pa55word")},
                    {"ssl.key.password", Secret("k3y")},
                    {"security.protocol", Secret("SASL_SSL")}};
    std::vector<std::string> secrets = detail::secret_values(p);
    CHECK(secrets.size() == 2);
    CHECK(detail::redact("auth with pa55word and k3y, again pa55word", secrets) == "auth with *** and ***, again ***");
}

TEST_CASE("librdkafka log lines go to the JSON logger as component kafka", "[kafka][log]") {
    std::mutex mu;
    std::vector<std::string> lines;
    log::set_sink([&](std::string_view line) {
        std::lock_guard lock(mu);
        lines.emplace_back(line);
    });
    {
        detail::ClientContext ctx;
        ctx.role = "test";
        // No bootstrap.servers: librdkafka logs a CONFWARN notice at creation.
        detail::HandlePtr rk = detail::new_handle(RD_KAFKA_PRODUCER, detail::make_conf({}), ctx);
    }
    log::set_sink(nullptr);
    std::lock_guard lock(mu);
    bool found = false;
    for (const auto& l : lines)
        if (l.find("\"component\":\"kafka\"") != std::string::npos && l.find("bootstrap.servers") != std::string::npos &&
            l.find("\"fac\":\"CONFWARN\"") != std::string::npos)
            found = true;
    INFO((lines.empty() ? std::string("no lines") : lines.front()));
    CHECK(found);
}
