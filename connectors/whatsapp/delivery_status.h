// Delivery status events (sent / delivered / read / failed) for the `events`
// topic, as CloudEvents of type com.omnibus.message.status. lib/envelope
// defines the event type and the generic CloudEvents layer but no data shape
// for it; this is that shape. Nothing in it is WhatsApp-specific: it is meant
// to move next to the envelope once a second channel reports statuses.
//
// Body (JSON), optional fields absent when unknown (never null):
//   schema_version   int, 1
//   id               string, = ce_id
//   channel          {type, name}
//   message_id       the platform id of the message the status is about
//   status           the platform's word: sent | delivered | read | failed | … (open set)
//   recipient        {id, identities?}: who the message was sent to (identity strings)
//   timestamp        time (RFC 3339): when the platform says it happened
//   received_at      time: when omnibus received the status
//   errors[]         {code, title?, message?, details?, href?, retryable}
//   conversation     {id?, origin?, expires_at?}
//   pricing          {billable?, model?, category?, type?}
//   callback_data    what the sender attached to the message (omnibus: the
//                    outbound envelope's id), echoed by the platform
//   payload          the platform's raw JSON for this status
//
// Record: ce_type com.omnibus.message.status, ce_source the channel,
// ce_subject = message_id, ce_time = timestamp (received_at when absent);
// key = the recipient identity (the customer's partition), else message_id.
//
// Thread-safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "envelope/envelope.h"

namespace omnibus::connectors {

inline constexpr int kDeliveryStatusSchemaVersion = 1;

struct DeliveryError {
    std::int64_t code = 0;
    std::optional<std::string> title;
    std::optional<std::string> message;
    std::optional<std::string> details;
    std::optional<std::string> href;
    bool retryable = false;  // the channel's classification of `code`
    friend bool operator==(const DeliveryError&, const DeliveryError&) = default;
};

struct DeliveryConversation {
    std::optional<std::string> id;
    std::optional<std::string> origin;  // e.g. service, marketing, utility, authentication
    std::optional<envelope::Timestamp> expires_at;
    friend bool operator==(const DeliveryConversation&, const DeliveryConversation&) = default;
};

struct DeliveryPricing {
    std::optional<bool> billable;
    std::optional<std::string> model;     // e.g. CBP, PMP
    std::optional<std::string> category;  // e.g. service, marketing, utility
    std::optional<std::string> type;      // e.g. regular, free_customer_service
    friend bool operator==(const DeliveryPricing&, const DeliveryPricing&) = default;
};

struct DeliveryStatus {
    std::string id;  // ce_id
    envelope::Channel channel;
    std::string message_id;
    std::string status;
    std::optional<envelope::Participant> recipient;  // id, identities (no display name)
    std::optional<envelope::Timestamp> timestamp;
    envelope::Timestamp received_at{};
    std::vector<DeliveryError> errors;
    std::optional<DeliveryConversation> conversation;
    std::optional<DeliveryPricing> pricing;
    std::optional<std::string> callback_data;
    std::optional<json::RawJson> payload;
    friend bool operator==(const DeliveryStatus&, const DeliveryStatus&) = default;
};

envelope::CloudEvent attributes_of(const DeliveryStatus& status);
std::string encode_body(const DeliveryStatus& status);
// Record with the CloudEvents headers and the key described above.
kafka::Record encode(const DeliveryStatus& status);

// What a platform reports about the business account rather than about a
// message (WhatsApp: template approved/paused/rejected, quality rating,
// account review, phone number name …), as CloudEvents of type
// com.omnibus.channel.update on the events topic, so that operators and
// tools downstream see them. Body: schema_version 1, id (= ce_id), channel
// {type, name}, field (the platform's name for the kind of update, e.g.
// message_template_status_update), account_id (the platform's account, when
// given), received_at, payload (the platform's raw JSON of the update).
// ce_subject = field; key = the channel name (one channel's updates in order).
struct ChannelUpdate {
    std::string id;
    envelope::Channel channel;
    std::string field;
    std::optional<std::string> account_id;
    envelope::Timestamp received_at{};
    json::RawJson payload;
};
kafka::Record encode(const ChannelUpdate& update);

}  // namespace omnibus::connectors
