// WhatsApp Cloud API, outbound side, pure: the JSON bodies of
// `POST /{phone_number_id}/messages`, and what the Graph API answers —
// the new message id, or an error classified as worth retrying or not.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "envelope/result.h"

namespace omnibus::connectors::whatsapp {

using envelope::Result;

// Limits the Cloud API enforces, checked before sending (Unicode code points).
inline constexpr std::size_t kMaxTextBody = 4096;
inline constexpr std::size_t kMaxCaption = 1024;
inline constexpr std::size_t kMaxCallbackData = 512;
// Code points of UTF-8 text: the unit of those limits.
std::size_t code_points(std::string_view s);

// Fields every message request may carry.
struct Addressing {
    std::string to;                            // the customer's wa_id (digits, no '+')
    std::optional<std::string> reply_to;       // context.message_id: the wamid this replies to
    std::optional<std::string> callback_data;  // biz_opaque_callback_data, echoed in status webhooks
};

struct TextMessage {
    Addressing address;
    std::string body;
    bool preview_url = false;
};

enum class MediaKind : std::uint8_t { image, audio, video, document, sticker };
std::string_view to_string(MediaKind kind);

struct MediaMessage {
    Addressing address;
    MediaKind kind = MediaKind::image;
    std::optional<std::string> link;      // a public https URL, or
    std::optional<std::string> media_id;  // an id from the media upload endpoint (exactly one of the two)
    std::optional<std::string> caption;   // image, video, document
    std::optional<std::string> filename;  // document
};

struct TemplateParameter {
    enum class Type : std::uint8_t { text, currency, date_time, image, video, document, payload, coupon_code };
    Type type = Type::text;
    // text: the text; currency and date_time: fallback_value; payload: the
    // quick-reply payload; coupon_code: the code; media: the link or the id.
    std::string value;
    std::optional<std::string> name;      // parameter_name, for templates with named parameters (text only)
    std::string currency_code;            // currency: ISO 4217
    std::int64_t amount_1000 = 0;         // currency: amount × 1000
    bool media_is_id = false;             // media: value is a media id rather than a link
    std::optional<std::string> filename;  // document

    static TemplateParameter text(std::string v, std::optional<std::string> name = std::nullopt);
    static TemplateParameter currency(std::string fallback, std::string code, std::int64_t amount_1000);
    static TemplateParameter date_time(std::string fallback);
    static TemplateParameter media_link(Type type, std::string link);
    static TemplateParameter media_id(Type type, std::string id);
    static TemplateParameter payload(std::string v);
    static TemplateParameter coupon_code(std::string v);
};

struct TemplateComponent {
    std::string type;                     // header | body | button
    std::optional<std::string> sub_type;  // button: quick_reply | url | copy_code | …
    std::optional<int> index;             // button: its position, 0-based
    std::vector<TemplateParameter> parameters;
};

struct TemplateMessage {
    Addressing address;
    std::string name;
    std::string language;  // the template's language code, e.g. en_US, pt_BR
    std::vector<TemplateComponent> components;
};

// Request bodies. An error (code bad_value / missing_field, with the field)
// when the message breaks a rule the API would reject it for.
Result<std::string> text_request(const TextMessage& m);
Result<std::string> media_request(const MediaMessage& m);
Result<std::string> template_request(const TemplateMessage& m);
// Marks an inbound message read (blue ticks); with `typing` also shows the
// typing indicator for up to 25 s or until the reply.
std::string mark_read_request(std::string_view message_id, bool typing = false);

// ---- responses ------------------------------------------------------------------

struct SendAccepted {
    std::string message_id;                     // messages[0].id, the wamid
    std::optional<std::string> message_status;  // messages[0].message_status (accepted, held_for_quality_assessment, …)
    std::optional<std::string> wa_id;           // contacts[0].wa_id
    friend bool operator==(const SendAccepted&, const SendAccepted&) = default;
};

// What the sender should do about a failure. See classify() for the table.
enum class FailureKind : std::uint8_t {
    rate_limited,     // retry with backoff
    transient,        // retry with backoff
    window_closed,    // 24 h customer service window closed: send a template instead
    auth,             // token/permissions: fix the configuration (alert), do not retry
    recipient,        // this customer cannot receive it (undeliverable, opted out, …)
    invalid_request,  // the request is wrong (parameter, type, media)
    template_error,   // the template is missing, paused, disabled, or its parameters mismatch
    account,          // the business account is blocked, restricted or not registered
    bad_response,     // 2xx without a message id: unknown whether it was sent, do not retry
    unknown,          // a code not in the table, on a 4xx
};
std::string_view to_string(FailureKind kind);
bool is_retryable(FailureKind kind);

struct GraphError {
    int http_status = 0;  // 0 when the error came in a status webhook
    std::int64_t code = 0;
    std::optional<std::int64_t> subcode;  // error_subcode
    std::string message;
    std::optional<std::string> type;     // OAuthException, …
    std::optional<std::string> details;  // error_data.details
    std::optional<std::string> fbtrace_id;
    std::optional<bool> is_transient;
    FailureKind kind = FailureKind::unknown;
    bool retryable() const { return is_retryable(kind); }
    friend bool operator==(const GraphError&, const GraphError&) = default;
};

// The table of Cloud API error codes (whatsapp_graph.cpp documents it). A code
// not in the table is decided by the HTTP status (429 and 5xx retry), then by
// the error's is_transient flag.
FailureKind classify(int http_status, std::int64_t code, std::optional<bool> is_transient = std::nullopt);

using SendResponse = std::variant<SendAccepted, GraphError>;
// Never fails: an unreadable body becomes a GraphError classified by status.
SendResponse parse_send_response(int http_status, std::string_view body);

}  // namespace omnibus::connectors::whatsapp
