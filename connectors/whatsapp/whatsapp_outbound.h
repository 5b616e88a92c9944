// WhatsApp Cloud API, outbound side, pure: what a reply envelope from
// omnibus.delivery becomes (the Graph API request bodies, in order), whether
// the customer's 24-hour customer-service window allows a free-form message,
// and how long to wait before a retry.
//
// A reply becomes one or more messages, sent in order to the same customer:
//   - text: one text message; a text over the 4,096-character limit is split
//     into several (split_text), at a line break or space near the limit;
//   - attachments (image, audio, video, document, sticker): one media message
//     each; the text rides as the caption of the first attachment that can
//     carry one (image, video, document) when it fits the 1,024-character
//     caption limit, and is sent as text messages first otherwise.
// Every request carries biz_opaque_callback_data = the envelope id, so the
// statuses Meta reports for the messages link back to the reply, and the
// first one carries context.message_id = content.reply_to when set.
// Other content types (location, contacts, reactions, …) are not delivered on
// this channel: plan() refuses them with a clear error (dead-lettered).
//
// Recipient: recipient.id `whatsapp:<wa_id>`, else the first `whatsapp:` or
// `phone:+<E.164>` identity of the recipient (the Cloud API takes a phone
// number as `to` too).
//
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/envelope.h"
#include "envelope/result.h"

namespace omnibus::connectors::whatsapp {

using envelope::Result;

// route.flags value with which the pipeline tells the connector that the
// customer's window is closed (docs/envelope.md).
inline constexpr std::string_view kOutsideWindowFlag = "outside_24h_window";
// route.flags value set on a reply sent back to the human outbox because the
// window was closed and no template is configured.
inline constexpr std::string_view kWindowClosedFlag = "window_closed";
// How long after the customer's last message a free-form message may be sent.
inline constexpr std::chrono::hours kServiceWindow{24};

struct OutboundPlan {
    std::string to;                     // wa_id or phone digits, no '+'
    std::vector<std::string> requests;  // JSON bodies of POST /<phone_number_id>/messages, in order
};

// The recipient's wa_id (digits), or nullopt when the envelope names none.
std::optional<std::string> recipient_wa_id(const envelope::Envelope& env);

// The wa_id whose service window an identity names, for forgetting it when the
// customer is erased: `whatsapp:<wa_id>` as the inbound side records windows
// (the sender id as Meta sent it), `phone:+<digits>` as a reply may address
// the same number. nullopt for any other identity.
std::optional<std::string> window_wa_id(std::string_view identity);

// Errors: missing_field (no recipient, nothing to send), bad_value (a content
// type or attachment this channel cannot send, an over-long caption-less
// document name, …), each naming the field.
Result<OutboundPlan> plan(const envelope::Envelope& env);

// The closed-window replacement: the configured template (no parameters).
Result<std::string> plan_template(std::string_view to, std::string_view name, std::string_view language,
                                  std::string_view callback_data);

// Splits text into pieces of at most `limit` code points, preferring to cut
// after a line break in the second half of a piece, then after a space in its
// last quarter; never inside a UTF-8 sequence. Empty text gives no pieces.
std::vector<std::string> split_text(std::string_view text, std::size_t limit);

enum class Window : std::uint8_t { open, closed, unknown };
std::string_view to_string(Window w);

// The window as far as this instance knows: closed when the pipeline flagged
// the reply outside_24h_window; otherwise from `expires_ms` (the customer's
// last inbound message time + 24 h, when this channel has seen one): open
// before it, closed after; unknown without it.
Window window_state(const envelope::Envelope& env, std::optional<std::int64_t> expires_ms, std::int64_t now_ms);

// Wait before retry number `attempt` (1 for the first retry): base × 2^(attempt-1)
// capped at `max`, with "equal jitter" (half fixed, half random: jitter01 in
// [0, 1) picks the point), and never shorter than the server's Retry-After.
std::chrono::milliseconds retry_delay(int attempt, std::chrono::milliseconds base, std::chrono::milliseconds max,
                                      std::optional<std::chrono::seconds> retry_after, double jitter01);

}  // namespace omnibus::connectors::whatsapp
