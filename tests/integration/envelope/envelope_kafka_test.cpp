// An envelope through real Kafka: encoded, produced with the Kafka layer,
// read back by kcat (an independent client) with its CloudEvents headers, and
// consumed and decoded to the same envelope.
#include <catch2/catch.hpp>

#include "envelope/envelope.h"
#include "integration/kafka/kafka_test_support.h"
#include "unit/envelope/envelope_samples.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;

TEST_CASE("kcat shows an envelope's ce_ headers and JSON body, and a consumer decodes the same envelope") {
    EmbeddedCluster cluster;
    KafkaSettings s = settings_for(cluster);
    cluster.create_topic("omnibus.inbound", 3);
    metrics::Registry registry;

    envelope::Envelope sent = envelope::testing::full_envelope();
    sent.id = envelope::new_id();
    Record rec = envelope::encode(sent, sent.sender.id);
    rec.topic = "omnibus.inbound";
    {
        Producer producer(s, registry);
        Deliveries deliveries;
        producer.produce(rec, deliveries.callback());
        REQUIRE(producer.flush(10s) == 0);
        REQUIRE(deliveries.ok() == 1);
    }

    // kcat: headers as name=value pairs, then the key and the body, one record.
    std::string out = run("kcat -C -b " + s.brokers +
                          " -t omnibus.inbound -o beginning -e -q -c 1 -f 'HEADERS %h\\nKEY %k\\nBODY %s\\n' 2>&1");
    INFO(out);
    CHECK(out.find("ce_specversion=1.0") != std::string::npos);
    CHECK(out.find("ce_id=" + sent.id) != std::string::npos);
    CHECK(out.find("ce_type=com.omnibus.message.inbound") != std::string::npos);
    CHECK(out.find("ce_source=") != std::string::npos);
    CHECK(out.find("ce_time=") != std::string::npos);
    CHECK(out.find("content-type=application/json") != std::string::npos);
    CHECK(out.find("KEY whatsapp:15551234567\n") != std::string::npos);
    CHECK(out.find("BODY {") != std::string::npos);
    CHECK(out.find("\"id\":\"" + sent.id + "\"") != std::string::npos);

    Collected got;
    ConsumerOptions opts;
    opts.group_id = "envelope-test";
    opts.topics = {"omnibus.inbound"};
    opts.handler = [&](const ConsumedRecord& r) {
        got.add(r);
        return Disposition::done;
    };
    Consumer consumer(s, opts, registry);
    REQUIRE(wait_until([&] { return got.size() == 1; }, 20s));
    consumer.stop();

    auto decoded = envelope::decode(got.all().front().record);
    REQUIRE(decoded.ok());
    CHECK(decoded.value() == sent);
}
