// Reply envelope → Graph API requests, the 24-hour window and retry delays
// (see whatsapp_outbound.h).
#include "connectors/whatsapp/whatsapp_outbound.h"

#include <algorithm>
#include <cmath>

#include "connectors/whatsapp/whatsapp_graph.h"

namespace omnibus::connectors::whatsapp {
namespace {

using envelope::AttachmentType;
using envelope::ContentType;
using envelope::Error;
using envelope::ErrorCode;

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<std::string> wa_id_of(std::string_view identity) {
    if (identity.starts_with("whatsapp:") && all_digits(identity.substr(9))) return std::string(identity.substr(9));
    if (identity.starts_with("phone:+") && all_digits(identity.substr(7))) return std::string(identity.substr(7));
    return std::nullopt;
}

std::optional<MediaKind> media_kind(AttachmentType t) {
    switch (t) {
        case AttachmentType::image: return MediaKind::image;
        case AttachmentType::audio: return MediaKind::audio;
        case AttachmentType::video: return MediaKind::video;
        case AttachmentType::document: return MediaKind::document;
        case AttachmentType::sticker: return MediaKind::sticker;
        case AttachmentType::other: return std::nullopt;
    }
    return std::nullopt;
}

bool takes_caption(MediaKind k) { return k == MediaKind::image || k == MediaKind::video || k == MediaKind::document; }

Error field_error(ErrorCode code, std::string field, const Error& inner) {
    return Error{code, std::move(field), inner.field + ": " + inner.message};
}

}  // namespace

std::optional<std::string> recipient_wa_id(const envelope::Envelope& env) {
    if (!env.recipient) return std::nullopt;
    if (auto id = wa_id_of(env.recipient->id); id && env.recipient->id.starts_with("whatsapp:")) return id;
    for (const std::string& identity : env.recipient->identities)
        if (identity.starts_with("whatsapp:"))
            if (auto id = wa_id_of(identity)) return id;
    if (auto id = wa_id_of(env.recipient->id)) return id;
    for (const std::string& identity : env.recipient->identities)
        if (auto id = wa_id_of(identity)) return id;
    return std::nullopt;
}

std::optional<std::string> window_wa_id(std::string_view identity) {
    constexpr std::string_view kWhatsApp = "whatsapp:";
    if (identity.starts_with(kWhatsApp) && identity.size() > kWhatsApp.size())
        return std::string(identity.substr(kWhatsApp.size()));
    return wa_id_of(identity);  // phone:+<digits>
}

std::vector<std::string> split_text(std::string_view text, std::size_t limit) {
    std::vector<std::string> out;
    if (limit == 0) return out;
    while (!text.empty()) {
        // Byte offset after `limit` code points (or the end).
        std::size_t cps = 0;
        std::size_t end = 0;
        while (end < text.size() && cps < limit) {
            ++end;
            while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
            ++cps;
        }
        if (end >= text.size()) {
            out.emplace_back(text);
            break;
        }
        // Prefer a line break in the second half of the piece, then a space
        // in its last quarter; cut hard otherwise.
        std::size_t cut = end;
        const std::size_t nl = text.rfind('\n', end - 1);
        const std::size_t sp = text.rfind(' ', end - 1);
        if (nl != std::string_view::npos && nl + 1 > end / 2) cut = nl + 1;
        else if (sp != std::string_view::npos && sp + 1 > end - end / 4) cut = sp + 1;
        out.emplace_back(text.substr(0, cut));
        text.remove_prefix(cut);
    }
    return out;
}

Result<OutboundPlan> plan(const envelope::Envelope& env) {
    if (env.direction != envelope::Direction::outbound)
        return Error{ErrorCode::bad_value, "direction", "only outbound messages are delivered"};
    std::optional<std::string> to = recipient_wa_id(env);
    if (!to)
        return Error{ErrorCode::missing_field, "recipient",
                     "no whatsapp:<wa_id> or phone:+<E.164> identity to deliver to"};

    const envelope::Content& c = env.content;
    switch (c.type) {
        case ContentType::text: case ContentType::image: case ContentType::audio: case ContentType::video:
        case ContentType::document: case ContentType::sticker:
            break;
        default:
            return Error{ErrorCode::bad_value, "content.type",
                         "content type " + std::string(envelope::to_string(c.type)) +
                             " is not delivered on WhatsApp (text and media only)"};
    }
    const bool has_text = c.text && !c.text->empty();
    if (!has_text && c.attachments.empty())
        return Error{ErrorCode::missing_field, "content", "nothing to send: no text and no attachments"};

    OutboundPlan p;
    p.to = *to;
    // Where the text goes: as the caption of the first attachment that can
    // carry it, or as text messages before the media.
    std::optional<std::size_t> caption_at;
    if (has_text && code_points(*c.text) <= kMaxCaption) {
        for (std::size_t i = 0; i < c.attachments.size(); ++i) {
            const auto kind = media_kind(c.attachments[i].type);
            if (kind && takes_caption(*kind) && !c.attachments[i].caption) {
                caption_at = i;
                break;
            }
        }
    }
    bool first = true;
    const auto addressing = [&] {
        Addressing a;
        a.to = p.to;
        if (first && c.reply_to) a.reply_to = c.reply_to;
        a.callback_data = env.id;
        first = false;
        return a;
    };
    if (has_text && !caption_at) {
        for (std::string& piece : split_text(*c.text, kMaxTextBody)) {
            TextMessage m{addressing(), std::move(piece), false};
            Result<std::string> body = text_request(m);
            if (!body) return field_error(body.error().code, "content.text", body.error());
            p.requests.push_back(std::move(*body));
        }
    }
    for (std::size_t i = 0; i < c.attachments.size(); ++i) {
        const envelope::Attachment& a = c.attachments[i];
        const std::string field = "content.attachments[" + std::to_string(i) + "]";
        const auto kind = media_kind(a.type);
        if (!kind) return Error{ErrorCode::bad_value, field + ".type", "attachment type other is not delivered on WhatsApp"};
        MediaMessage m;
        m.address = addressing();
        m.kind = *kind;
        if (a.media_id) m.media_id = a.media_id;
        else m.link = a.url;
        if (takes_caption(*kind)) {
            if (caption_at == i) m.caption = c.text;
            else if (a.caption) m.caption = a.caption;
        }
        if (*kind == MediaKind::document && a.filename) m.filename = a.filename;
        Result<std::string> body = media_request(m);
        if (!body) return field_error(body.error().code, field, body.error());
        p.requests.push_back(std::move(*body));
    }
    return p;
}

Result<std::string> plan_template(std::string_view to, std::string_view name, std::string_view language,
                                  std::string_view callback_data) {
    TemplateMessage m;
    m.address.to = std::string(to);
    m.address.callback_data = std::string(callback_data);
    m.name = std::string(name);
    m.language = std::string(language);
    return template_request(m);
}

std::string_view to_string(Window w) {
    switch (w) {
        case Window::open: return "open";
        case Window::closed: return "closed";
        case Window::unknown: return "unknown";
    }
    return "unknown";
}

Window window_state(const envelope::Envelope& env, std::optional<std::int64_t> expires_ms, std::int64_t now_ms) {
    if (env.route && std::find(env.route->flags.begin(), env.route->flags.end(), kOutsideWindowFlag) !=
                         env.route->flags.end())
        return Window::closed;
    if (!expires_ms) return Window::unknown;
    return now_ms < *expires_ms ? Window::open : Window::closed;
}

std::chrono::milliseconds retry_delay(int attempt, std::chrono::milliseconds base, std::chrono::milliseconds max,
                                      std::optional<std::chrono::seconds> retry_after, double jitter01) {
    using std::chrono::milliseconds;
    attempt = std::clamp(attempt, 1, 62);
    double d = static_cast<double>(base.count()) * std::ldexp(1.0, attempt - 1);
    d = std::min(d, static_cast<double>(max.count()));
    jitter01 = std::clamp(jitter01, 0.0, 1.0);
    milliseconds wait{static_cast<std::int64_t>(d / 2 + d / 2 * jitter01)};
    if (retry_after) wait = std::max<milliseconds>(wait, *retry_after);
    return wait;
}

}  // namespace omnibus::connectors::whatsapp
