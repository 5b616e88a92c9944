// CloudEvents 1.0 on Kafka, binary content mode: attributes as ce_* headers,
// the JSON data as the record value. Generic: messages, statuses, identity
// and erasure events all go through here.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "envelope/json.h"
#include "envelope/result.h"
#include "envelope/timestamp.h"
#include "kafka/record.h"

namespace omnibus::envelope {

inline constexpr std::string_view kSpecVersion = "1.0";
inline constexpr std::string_view kContentTypeJson = "application/json";

// Kafka header names (CloudEvents Kafka protocol binding 1.0, binary mode).
namespace header {
inline constexpr std::string_view specversion = "ce_specversion";
inline constexpr std::string_view id = "ce_id";
inline constexpr std::string_view source = "ce_source";
inline constexpr std::string_view type = "ce_type";
inline constexpr std::string_view time = "ce_time";
inline constexpr std::string_view subject = "ce_subject";
inline constexpr std::string_view dataschema = "ce_dataschema";
inline constexpr std::string_view content_type = "content-type";
}  // namespace header

// Every ce_type omnibus publishes (docs/envelope.md lists what each carries).
namespace event_type {
inline constexpr std::string_view message_inbound = "com.omnibus.message.inbound";    // customer -> shop
inline constexpr std::string_view message_outbound = "com.omnibus.message.outbound";  // shop -> customer
inline constexpr std::string_view message_status = "com.omnibus.message.status";      // sent/delivered/read/failed
inline constexpr std::string_view channel_update = "com.omnibus.channel.update";      // platform news about the account
inline constexpr std::string_view identity_link = "com.omnibus.identity.link";
inline constexpr std::string_view identity_merge = "com.omnibus.identity.merge";
inline constexpr std::string_view customer_erasure = "com.omnibus.customer.erasure";
}  // namespace event_type

// The CloudEvents context attributes omnibus uses. specversion and
// datacontenttype are fixed ("1.0", "application/json").
struct CloudEvent {
    std::string id;      // unique per source; omnibus uses UUIDv7 (envelope/id.h)
    std::string source;  // URI-reference, e.g. "/omnibus/channels/whatsapp-main"
    std::string type;    // one of event_type
    Timestamp time{};    // when it happened, UTC
    std::optional<std::string> subject;
    std::optional<std::string> dataschema;
    friend bool operator==(const CloudEvent&, const CloudEvent&) = default;
};

struct DecodeOptions {
    std::size_t max_body_bytes = 1 << 20;  // larger values are rejected before parsing
    unsigned max_depth = 64;               // JSON nesting, the body object counts as 1
    // A reply on <prefix>replies may leave `channel` out: the pipeline chooses it. Absent, the
    // decoded channel's type and name are empty. Every other topic requires it.
    bool channel_optional = false;
};

// "/omnibus/channels/<name>", the name percent-encoded outside [A-Za-z0-9._~-].
std::string channel_source(std::string_view channel_name);

// The same attributes as views into a record's headers: valid while the
// record lives, and no allocation (e.g. to route on ce_type).
struct CloudEventView {
    std::string_view id;
    std::string_view source;
    std::string_view type;
    Timestamp time{};
    std::optional<std::string_view> subject;
    std::optional<std::string_view> dataschema;
};

// Headers (in the order above, optional ones only when set) + key + value.
// `json_body` must be one JSON text (made with json::Writer).
kafka::Record to_record(CloudEvent event, std::string key, std::string json_body);

// Reads and checks the attribute headers: ce_specversion "1.0", content-type
// application/json (parameters allowed), ce_id/ce_source/ce_type non-empty
// UTF-8 without control characters, ce_time RFC 3339; none duplicated.
Result<CloudEventView> read_attribute_views(const kafka::Record& record);
Result<CloudEvent> read_attributes(const kafka::Record& record);

// read_attributes + the body parsed into out (size, depth and UTF-8 bounded).
Result<CloudEvent> read_event(const kafka::Record& record, json::ParsedDocument& out,
                              const DecodeOptions& options = {});

// A json::ParseError as the codec's Error (field "body" or "body <path>").
Error body_error(const json::ParseError& e);

}  // namespace omnibus::envelope
