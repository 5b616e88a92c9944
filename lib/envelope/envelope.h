// The message envelope: one canonical event per customer message, on every
// omnibus topic, as a CloudEvent (binary mode) with a JSON body. The contract
// is docs/envelope.md and schemas/envelope.schema.json.
//
// Thread-safety: encode/decode/validate are pure functions; each call uses only
// its arguments and thread-local scratch buffers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/cloudevent.h"
#include "envelope/id.h"
#include "envelope/json.h"
#include "envelope/result.h"
#include "envelope/timestamp.h"
#include "kafka/record.h"

namespace omnibus::envelope {

// Body field "schema_version". Bumped when fields are added; fields are never
// removed, renamed or retyped (docs/envelope.md, "Versioning").
inline constexpr int kSchemaVersion = 1;
// ce_dataschema of message records: the $id of schemas/envelope.schema.json.
inline constexpr std::string_view kEnvelopeSchemaUri = "urn:omnibus:schema:envelope";

// Closed sets: an unknown value is a decode error.
enum class Direction : std::uint8_t { inbound, outbound };
enum class SentimentLabel : std::uint8_t { negative, neutral, positive };
enum class RouteTarget : std::uint8_t { ai, human };

// Open sets: a value this build does not know decodes as `unsupported` / `other`
// (a newer connector may add types before every consumer is upgraded).
enum class ContentType : std::uint8_t {
    text, image, audio, video, document, sticker, location, contacts,
    interactive, button, reaction, order, template_, system, unsupported,
};
enum class AttachmentType : std::uint8_t { image, audio, video, document, sticker, other };

std::string_view to_string(Direction v);
std::string_view to_string(SentimentLabel v);
std::string_view to_string(RouteTarget v);
std::string_view to_string(ContentType v);  // template_ -> "template"
std::string_view to_string(AttachmentType v);
std::optional<Direction> parse_direction(std::string_view s);
std::optional<SentimentLabel> parse_sentiment_label(std::string_view s);
std::optional<RouteTarget> parse_route_target(std::string_view s);
ContentType parse_content_type(std::string_view s);        // unknown -> unsupported
AttachmentType parse_attachment_type(std::string_view s);  // unknown -> other

// "whatsapp:15551234567", "phone:+15551234567": scheme [a-z0-9_-]+, ':', non-empty rest.
bool is_identity(std::string_view s);

// Optional members: std::optional / an empty vector in C++ <=> the key is
// absent from the JSON (never null, never []).

struct Channel {
    std::string type;  // family: whatsapp, messenger, instagram, telegram, line, email, webchat, app, …
    std::string name;  // the configured instance, e.g. "whatsapp-eu"
    friend bool operator==(const Channel&, const Channel&) = default;
};

struct VerifiedClaims {  // what the platform or the shop vouches for
    std::optional<std::string> shop_customer_id;
    std::optional<std::string> email;
    std::optional<std::string> phone;  // E.164
    friend bool operator==(const VerifiedClaims&, const VerifiedClaims&) = default;
};

struct Participant {
    std::string id;                          // channel identity string, e.g. "whatsapp:15551234567"
    std::optional<std::string> display_name;
    std::vector<std::string> identities;     // other identity strings, e.g. "phone:+15551234567"
    std::optional<VerifiedClaims> verified_claims;
    friend bool operator==(const Participant&, const Participant&) = default;
};

struct Attachment {
    AttachmentType type = AttachmentType::other;
    std::optional<std::string> url;       // at least one of url / media_id
    std::optional<std::string> media_id;  // the platform's media id
    std::optional<std::string> mime_type;
    std::optional<std::string> filename;
    std::optional<std::uint64_t> size;    // bytes
    std::optional<std::string> caption;
    std::optional<std::string> sha256;    // 64 hex digits
    friend bool operator==(const Attachment&, const Attachment&) = default;
};

struct Location {
    double lat = 0;  // -90..90
    double lon = 0;  // -180..180
    std::optional<std::string> name;
    std::optional<std::string> address;
    friend bool operator==(const Location&, const Location&) = default;
};

struct Content {
    ContentType type = ContentType::text;
    std::optional<std::string> subject;  // email subject
    std::optional<std::string> text;     // the text, caption, or a reaction's emoji
    std::vector<Attachment> attachments;
    std::optional<Location> location;    // required when type is location
    std::optional<std::string> reply_to; // platform message id replied or reacted to
    friend bool operator==(const Content&, const Content&) = default;
};

struct Platform {
    std::string message_id;               // the platform's own id (dedup key)
    std::optional<Timestamp> timestamp;   // the platform's time for the message
    std::optional<json::RawJson> payload; // the platform's raw JSON for this message
    friend bool operator==(const Platform&, const Platform&) = default;
};

struct Intent {
    std::string name;
    double confidence = 0;  // 0..1
    std::optional<std::string> rule;
    friend bool operator==(const Intent&, const Intent&) = default;
};

struct Entity {
    std::string type;  // order_number, tracking_number, email, phone, sku, …
    std::string value;
    friend bool operator==(const Entity&, const Entity&) = default;
};

struct Sentiment {
    SentimentLabel label = SentimentLabel::neutral;
    double score = 0;  // -1 (negative) .. 1 (positive)
    friend bool operator==(const Sentiment&, const Sentiment&) = default;
};

struct Route {
    RouteTarget target = RouteTarget::ai;
    std::optional<std::string> rule;   // the routing rule that decided
    int priority = 0;                  // higher is more urgent
    std::optional<std::string> queue;  // helpdesk queue / skill group
    std::vector<std::string> flags;    // e.g. "vip", "angry", "outside_24h_window"
    friend bool operator==(const Route&, const Route&) = default;
};

struct ContextEntry {  // one earlier message of the conversation, newest last
    std::string id;    // that message's envelope id
    Direction direction = Direction::inbound;
    std::optional<std::string> channel;  // channel name
    std::optional<std::string> text;
    Timestamp at{};
    std::optional<std::string> author;   // "customer", "ai", "agent:<id>"
    friend bool operator==(const ContextEntry&, const ContextEntry&) = default;
};

// A top-level body field this build does not know, kept so that re-encoding an
// envelope written by a newer producer does not drop it.
struct UnknownField {
    std::string name;
    json::RawJson value;
    friend bool operator==(const UnknownField&, const UnknownField&) = default;
};

struct Envelope {
    int schema_version = kSchemaVersion;

    // Set by the connector.
    std::string id;  // omnibus's id (new_id()), also ce_id
    Channel channel;
    Direction direction = Direction::inbound;
    Participant sender;
    std::optional<Participant> recipient;  // set on outbound
    Content content;
    Timestamp received_at{};           // when omnibus received (inbound) or accepted (outbound) it
    std::optional<Platform> platform;  // required on inbound

    // Set by the pipeline.
    std::optional<std::string> customer_id;      // identity
    std::optional<std::string> conversation_id;  // conversation
    std::optional<std::string> language;         // BCP 47, e.g. "pt-BR"
    std::optional<double> language_confidence;   // 0..1
    std::optional<Intent> intent;
    std::vector<Entity> entities;
    std::optional<Sentiment> sentiment;
    std::optional<Route> route;
    std::vector<ContextEntry> context;

    std::vector<UnknownField> unknown_fields;

    friend bool operator==(const Envelope&, const Envelope&) = default;
};

// ---- codec ------------------------------------------------------------------

// The CloudEvent attributes of a message: ce_id = id, ce_source =
// channel_source(channel.name), ce_type = message.inbound|outbound by
// direction, ce_time = received_at, ce_dataschema = kEnvelopeSchemaUri.
CloudEvent attributes_of(const Envelope& env);

// Record with the CloudEvents headers, `key` (channel identity or customer id,
// as the topic wants) and the JSON body; the topic is left to the producer.
// Never fails: strings that are not UTF-8 are written with U+FFFD, non-finite
// numbers are left out. Producers call validate() where the input is built.
kafka::Record encode(const Envelope& env, std::string key);
std::string encode_body(const Envelope& env);

// An encoded body with "customer_id" added as its last member, without decoding and
// encoding the rest again. For a body that decode() accepted, in which "customer_id" and
// "\u" appear nowhere (a member named twice is an error, and null or an escaped name would
// hide one), and an id of [A-Za-z0-9._:-] (nothing to escape); nullopt otherwise, and the
// caller encodes the envelope instead.
std::optional<std::string> with_customer_id(std::string_view body, std::string_view customer_id);

// Hostile-input safe: any error is returned with the field it concerns.
// Also checks that ce_type matches direction and ce_id matches id.
Result<Envelope> decode(const kafka::Record& record, const DecodeOptions& options = {});
Result<Envelope> decode_body(std::string_view json, const DecodeOptions& options = {});

// The value rules decode applies after reading the JSON (non-empty ids,
// identity strings, ranges, inbound has platform.message_id, …).
Status validate(const Envelope& env);

}  // namespace omnibus::envelope
