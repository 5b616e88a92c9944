// WhatsApp Cloud API, inbound side, pure: a webhook POST body becomes message
// envelopes (omnibus.inbound) and delivery statuses (omnibus.events); the GET
// subscription handshake; the ids events get. No I/O, no clock, no globals:
// the caller passes the time the request was received.
//
// What a body becomes (README.md in this folder has the full mapping):
//  - The body as a whole is refused (an Error: answer 400 / dead-letter the
//    body) when it is not JSON, too large or deep, not an object, not
//    `"object": "whatsapp_business_account"`, or has no `entry` array.
//  - Every message of every change of every entry is one envelope, every
//    status one DeliveryStatus, in the order of the body.
//  - A message whose content is malformed (e.g. an image without an id, a
//    location without coordinates, an unknown type) is still an envelope, with
//    content.type `unsupported` and the platform payload kept, so nothing is
//    lost and the customer still gets an answer; it is listed in `degraded`.
//  - A part that cannot become an event at all (a message without id or
//    sender, a status without id, an entry that is not an object, …) is listed
//    in `rejected` with its raw JSON: dead-letter it. The rest of the body
//    still counts.
//  - Changes of other webhook fields (message_template_status_update,
//    account_update, …) come back raw in `other`.
//
// Thread-safety: a WebhookCodec is immutable after construction (its phone
// memo is internally synchronised); parse() may run on many threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "connectors/whatsapp/delivery_status.h"
#include "envelope/envelope.h"
#include "phone/phone_normalizer.h"

namespace omnibus::connectors::whatsapp {

using envelope::Result;

inline constexpr std::string_view kChannelType = "whatsapp";

// Identity schemes this channel writes (besides `phone:`):
inline constexpr std::string_view kUserScheme = "whatsapp";               // whatsapp:<wa_id>
inline constexpr std::string_view kBsuidScheme = "whatsapp_bsuid";        // whatsapp_bsuid:<business-scoped user id>
inline constexpr std::string_view kBusinessScheme = "whatsapp_business";  // whatsapp_business:<phone_number_id>
inline constexpr std::string_view kGroupScheme = "whatsapp_group";        // whatsapp_group:<group id>

struct CodecOptions {
    std::string channel_name;              // the channel block's name; channel.name of every event
    std::string default_region;            // ISO 3166-1 code for shared-contact numbers without '+'; "" = none
    std::size_t max_body_bytes = 3 << 20;  // Meta sends at most 3 MB
    unsigned max_depth = 32;               // real payloads nest 9 levels
};

// A part of the body that could not become an event: dead-letter `raw`.
struct Rejected {
    envelope::Error error;  // field: where in the body, e.g. "entry[0].changes[0].value.messages[2].id"
    json::RawJson raw;      // the part itself (the message, status, change or entry)
};

// A message normalised as `unsupported` because its content was malformed.
struct Degraded {
    std::size_t message = 0;  // index into WebhookEvents::messages
    envelope::Error reason;
};

// A change of another webhook field, passed through.
struct OtherChange {
    std::string field;    // e.g. message_template_status_update; "messages.errors" for value.errors
    std::string waba_id;  // entry.id (the WhatsApp Business Account), "" when absent
    json::RawJson value;
};

struct WebhookEvents {
    std::vector<envelope::Envelope> messages;
    std::vector<DeliveryStatus> statuses;
    std::vector<OtherChange> other;
    std::vector<Rejected> rejected;
    std::vector<Degraded> degraded;
};

class WebhookCodec {
public:
    // Throws std::invalid_argument when channel_name is not a valid channel
    // name or default_region is unknown (start-up, never on traffic).
    explicit WebhookCodec(CodecOptions options);
    ~WebhookCodec();
    WebhookCodec(const WebhookCodec&) = delete;
    WebhookCodec& operator=(const WebhookCodec&) = delete;

    // Every envelope returned passes envelope::validate(). Never throws
    // (except std::bad_alloc).
    Result<WebhookEvents> parse(std::string_view body, envelope::Timestamp received_at) const;

    const CodecOptions& options() const { return options_; }
    const phone::PhoneNormalizer& phones() const { return phones_; }

private:
    struct MdFree {
        void operator()(EVP_MD* md) const;
    };
    CodecOptions options_;
    phone::PhoneNormalizer phones_;
    std::unique_ptr<EVP_MD, MdFree> sha256_;  // fetched once: 3x faster than EVP_sha256() per call
};

// ---- ids -----------------------------------------------------------------------

// Deterministic event ids, so that a webhook Meta delivers again (it retries
// for up to 7 days) produces the same ce_id and downstream can deduplicate on
// it. UUIDv7 layout: the 48-bit time is `at` (the platform's timestamp, so ids
// still sort by time), the 74 other bits come from SHA-256 of the inputs.
// Independent of the channel name: the wamid is globally unique.
std::string message_event_id(std::string_view wamid, envelope::Timestamp at);
std::string status_event_id(std::string_view wamid, std::string_view status, envelope::Timestamp at);

// ---- GET handshake ---------------------------------------------------------------

struct HandshakeReply {
    int status = 403;  // 200 or 403
    std::string body;  // the challenge on 200 (send as text/plain), empty on 403
    friend bool operator==(const HandshakeReply&, const HandshakeReply&) = default;
};

// The subscription check Meta makes when the webhook URL is configured:
// 200 + challenge when hub.mode is "subscribe" and hub.verify_token equals the
// configured token (constant-time comparison), 403 otherwise. The challenge is
// echoed only if it is 1-128 characters of [A-Za-z0-9._~-] (Meta sends digits),
// so the endpoint cannot reflect arbitrary content.
HandshakeReply verify_subscription(std::string_view mode, std::string_view verify_token, std::string_view challenge,
                                   std::string_view configured_token);

}  // namespace omnibus::connectors::whatsapp
