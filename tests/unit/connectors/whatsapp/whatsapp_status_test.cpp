// Status webhooks (sent, delivered, read, failed) → delivery status events on
// omnibus.events, linked to the outbound message by its wamid.
#include <catch2/catch.hpp>

#include "connectors/whatsapp/delivery_status.h"
#include "connectors/whatsapp/whatsapp_codec.h"
#include "whatsapp_test_support.h"

using namespace omnibus;
using namespace omnibus::envelope;
using namespace omnibus::connectors;
using namespace omnibus::connectors::whatsapp;
using namespace omnibus::connectors::whatsapp::testing;

namespace {

DeliveryStatus only_status(const WebhookEvents& ev) {
    REQUIRE(ev.statuses.size() == 1);
    CHECK(ev.messages.empty());
    CHECK(ev.rejected.empty());
    return ev.statuses[0];
}

}  // namespace

TEST_CASE("sent: message id, recipient, time, conversation, pricing and callback data") {
    const WebhookEvents ev = parse_sample("status_sent");
    const DeliveryStatus& s = only_status(ev);
    CHECK(s.channel == Channel{"whatsapp", "whatsapp-eu"});
    CHECK(s.message_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");
    CHECK(s.status == "sent");
    REQUIRE(s.recipient);
    CHECK(s.recipient->id == "whatsapp:16505551234");
    CHECK(s.timestamp == at("2024-05-01T12:35:01Z"));
    CHECK(s.received_at == kReceived);
    CHECK(s.errors.empty());
    REQUIRE(s.conversation);
    CHECK(s.conversation->id == "a1b2c3d4e5f60718293a4b5c6d7e8f90");
    CHECK(s.conversation->origin == "service");
    CHECK(s.conversation->expires_at == at("2024-05-02T12:35:01Z"));
    REQUIRE(s.pricing);
    CHECK(s.pricing->billable == true);
    CHECK(s.pricing->model == "CBP");
    CHECK(s.pricing->category == "service");
    CHECK_FALSE(s.pricing->type);
    CHECK(s.callback_data == "018f3a4c-8e21-7b3a-9c4d-2f6e8a1b3c5e");
    CHECK(s.id == status_event_id(s.message_id, "sent", at("2024-05-01T12:35:01Z")));
    REQUIRE(s.payload);
    CHECK(s.payload->text().find(R"("status":"sent")") != std::string::npos);
}

TEST_CASE("delivered and read: one event each, distinct ids for the same message") {
    const DeliveryStatus d = only_status(parse_sample("status_delivered"));
    const DeliveryStatus r = only_status(parse_sample("status_read"));
    CHECK(d.status == "delivered");
    CHECK(r.status == "read");
    CHECK(d.message_id == r.message_id);
    CHECK(d.id != r.id);
    CHECK_FALSE(r.conversation);
    CHECK_FALSE(r.pricing);
    CHECK_FALSE(r.callback_data);
}

TEST_CASE("failed: the errors with code, title, message, details, href and whether to retry") {
    const DeliveryStatus s = only_status(parse_sample("status_failed"));
    CHECK(s.status == "failed");
    REQUIRE(s.errors.size() == 1);
    const DeliveryError& e = s.errors[0];
    CHECK(e.code == 131047);
    CHECK(e.title == "Re-engagement message");
    CHECK(e.message == "Re-engagement message");
    CHECK(e.details ==
          "Message failed to send because more than 24 hours have passed since the customer last replied to this "
          "number.");
    CHECK(e.href == "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/");
    CHECK_FALSE(e.retryable);

    auto transient = codec().parse(
        R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[
            {"id":"wamid.F","status":"failed","timestamp":"1714566895","recipient_id":"16505551234",
             "errors":[{"code":130429,"title":"Rate limit hit"},{"code":"x"},7]}]}}]}]})",
        kReceived);
    REQUIRE(transient.ok());
    REQUIRE(transient->statuses.at(0).errors.size() == 2);
    CHECK(transient->statuses[0].errors[0].retryable);
    CHECK(transient->statuses[0].errors[1].code == 0);  // a code that is not a number
}

TEST_CASE("the status record: CloudEvents headers, key, and the exact body") {
    const DeliveryStatus s = only_status(parse_sample("status_failed"));
    const kafka::Record r = encode(s);
    CHECK(r.key == "whatsapp:16505551234");
    CHECK(r.header(header::specversion)->value == "1.0");
    CHECK(r.header(header::id)->value == s.id);
    CHECK(r.header(header::source)->value == "/omnibus/channels/whatsapp-eu");
    CHECK(r.header(header::type)->value == event_type::message_status);
    CHECK(r.header(header::time)->value == "2024-05-03T12:40:00.000Z");
    CHECK(r.header(header::subject)->value == s.message_id);
    CHECK(r.header(header::content_type)->value == "application/json");
    auto attrs = read_attributes(r);
    REQUIRE(attrs.ok());

    const std::string golden = read_file(kSource / "tests/data/whatsapp/expected/status_failed.event.json");
    CHECK(r.value == compact(golden));
}

TEST_CASE("a status without a recipient is keyed by its message id, and BSUID and group recipients") {
    auto r = codec().parse(
        R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[
            {"id":"wamid.A","status":"read","timestamp":"1714566895"},
            {"id":"wamid.B","status":"read","timestamp":"1714566895","recipient_user_id":"US.13491208655302741918"},
            {"id":"wamid.C","status":"read","timestamp":"1714566895","recipient_id":"16505551234","recipient_user_id":"US.13491208655302741918"},
            {"id":"wamid.D","status":"delivered","timestamp":"1714566895","recipient_id":"120363040987654321","recipient_type":"group"},
            {"id":"wamid.E","status":"played","timestamp":"1714566895","recipient_id":"not digits"}]}}]}]})",
        kReceived);
    REQUIRE(r.ok());
    REQUIRE(r->statuses.size() == 5);
    CHECK_FALSE(r->statuses[0].recipient);
    CHECK(encode(r->statuses[0]).key == "wamid.A");
    CHECK(r->statuses[1].recipient->id == "whatsapp_bsuid:US.13491208655302741918");
    CHECK(r->statuses[2].recipient->id == "whatsapp:16505551234");
    CHECK(r->statuses[2].recipient->identities == std::vector<std::string>{"whatsapp_bsuid:US.13491208655302741918"});
    CHECK(r->statuses[3].recipient->id == "whatsapp_group:120363040987654321");
    CHECK(r->statuses[4].status == "played");  // open set: kept as the platform says it
    CHECK_FALSE(r->statuses[4].recipient);
}
