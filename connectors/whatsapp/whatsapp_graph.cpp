// Graph API message requests and responses for the WhatsApp Cloud API, and
// the error-code table that decides what a failed send becomes.
#include "connectors/whatsapp/whatsapp_graph.h"

#include <rapidjson/stringbuffer.h>

#include "envelope/json.h"

namespace omnibus::connectors::whatsapp {
namespace {

using envelope::Error;
using envelope::ErrorCode;
using json::write_key;
using json::write_string;

bool has_control(std::string_view s) {
    for (const char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return true;
    return false;
}

std::optional<Error> check_addressing(const Addressing& a) {
    if (a.to.empty()) return Error{ErrorCode::missing_field, "to", "the recipient's wa_id is empty"};
    if (has_control(a.to)) return Error{ErrorCode::bad_value, "to", "contains control characters"};
    if (a.reply_to && a.reply_to->empty())
        return Error{ErrorCode::bad_value, "context.message_id", "must not be empty"};
    if (a.callback_data && code_points(*a.callback_data) > kMaxCallbackData)
        return Error{ErrorCode::bad_value, "biz_opaque_callback_data",
                     "longer than " + std::to_string(kMaxCallbackData) + " characters"};
    return std::nullopt;
}

// Writes the fields every request starts with; leaves the object open.
void begin_message(json::Writer& w, const Addressing& a, std::string_view type) {
    w.StartObject();
    write_key(w, "messaging_product");
    w.String("whatsapp");
    write_key(w, "recipient_type");
    w.String("individual");
    write_key(w, "to");
    write_string(w, a.to);
    if (a.reply_to) {
        write_key(w, "context");
        w.StartObject();
        write_key(w, "message_id");
        write_string(w, *a.reply_to);
        w.EndObject();
    }
    write_key(w, "type");
    write_string(w, type);
}

std::string end_message(json::Writer& w, rapidjson::StringBuffer& buf, const Addressing& a) {
    if (a.callback_data) {
        write_key(w, "biz_opaque_callback_data");
        write_string(w, *a.callback_data);
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::string_view parameter_type_name(TemplateParameter::Type t) {
    using T = TemplateParameter::Type;
    switch (t) {
        case T::text: return "text";
        case T::currency: return "currency";
        case T::date_time: return "date_time";
        case T::image: return "image";
        case T::video: return "video";
        case T::document: return "document";
        case T::payload: return "payload";
        case T::coupon_code: return "coupon_code";
    }
    return "text";
}

bool is_media(TemplateParameter::Type t) {
    using T = TemplateParameter::Type;
    return t == T::image || t == T::video || t == T::document;
}

void write_parameter(json::Writer& w, const TemplateParameter& p) {
    using T = TemplateParameter::Type;
    w.StartObject();
    write_key(w, "type");
    write_string(w, parameter_type_name(p.type));
    if (p.name) {
        write_key(w, "parameter_name");
        write_string(w, *p.name);
    }
    switch (p.type) {
        case T::text:
            write_key(w, "text");
            write_string(w, p.value);
            break;
        case T::currency:
            write_key(w, "currency");
            w.StartObject();
            write_key(w, "fallback_value");
            write_string(w, p.value);
            write_key(w, "code");
            write_string(w, p.currency_code);
            write_key(w, "amount_1000");
            w.Int64(p.amount_1000);
            w.EndObject();
            break;
        case T::date_time:
            write_key(w, "date_time");
            w.StartObject();
            write_key(w, "fallback_value");
            write_string(w, p.value);
            w.EndObject();
            break;
        case T::image:
        case T::video:
        case T::document:
            write_key(w, parameter_type_name(p.type));
            w.StartObject();
            write_key(w, p.media_is_id ? "id" : "link");
            write_string(w, p.value);
            if (p.filename) {
                write_key(w, "filename");
                write_string(w, *p.filename);
            }
            w.EndObject();
            break;
        case T::payload:
            write_key(w, "payload");
            write_string(w, p.value);
            break;
        case T::coupon_code:
            write_key(w, "coupon_code");
            write_string(w, p.value);
            break;
    }
    w.EndObject();
}

const json::Value* member(const json::Value& obj, const char* key) {
    if (!obj.IsObject()) return nullptr;
    const auto it = obj.FindMember(key);
    return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string> string_member(const json::Value& obj, const char* key) {
    const json::Value* v = member(obj, key);
    if (!v || !v->IsString() || v->GetStringLength() == 0) return std::nullopt;
    return std::string(json::view(*v));
}

std::optional<std::int64_t> int_member(const json::Value& obj, const char* key) {
    const json::Value* v = member(obj, key);
    if (v && v->IsInt64()) return v->GetInt64();
    // Some Graph errors carry codes as strings.
    if (v && v->IsString()) {
        std::int64_t n = 0;
        const std::string_view s = json::view(*v);
        if (s.empty() || s.size() > 18) return std::nullopt;
        for (const char c : s) {
            if (c < '0' || c > '9') return std::nullopt;
            n = n * 10 + (c - '0');
        }
        return n;
    }
    return std::nullopt;
}

}  // namespace

std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (const char c : s)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

std::string_view to_string(MediaKind kind) {
    switch (kind) {
        case MediaKind::image: return "image";
        case MediaKind::audio: return "audio";
        case MediaKind::video: return "video";
        case MediaKind::document: return "document";
        case MediaKind::sticker: return "sticker";
    }
    return "image";
}

TemplateParameter TemplateParameter::text(std::string v, std::optional<std::string> param_name) {
    TemplateParameter p;
    p.type = Type::text;
    p.value = std::move(v);
    p.name = std::move(param_name);
    return p;
}
TemplateParameter TemplateParameter::currency(std::string fallback, std::string code, std::int64_t amount) {
    TemplateParameter p;
    p.type = Type::currency;
    p.value = std::move(fallback);
    p.currency_code = std::move(code);
    p.amount_1000 = amount;
    return p;
}
TemplateParameter TemplateParameter::date_time(std::string fallback) {
    TemplateParameter p;
    p.type = Type::date_time;
    p.value = std::move(fallback);
    return p;
}
TemplateParameter TemplateParameter::media_link(Type type, std::string link) {
    TemplateParameter p;
    p.type = type;
    p.value = std::move(link);
    return p;
}
TemplateParameter TemplateParameter::media_id(Type type, std::string id) {
    TemplateParameter p;
    p.type = type;
    p.value = std::move(id);
    p.media_is_id = true;
    return p;
}
TemplateParameter TemplateParameter::payload(std::string v) {
    TemplateParameter p;
    p.type = Type::payload;
    p.value = std::move(v);
    return p;
}
TemplateParameter TemplateParameter::coupon_code(std::string v) {
    TemplateParameter p;
    p.type = Type::coupon_code;
    p.value = std::move(v);
    return p;
}

Result<std::string> text_request(const TextMessage& m) {
    if (auto e = check_addressing(m.address)) return *e;
    if (m.body.empty()) return Error{ErrorCode::missing_field, "text.body", "the text is empty"};
    if (code_points(m.body) > kMaxTextBody)
        return Error{ErrorCode::bad_value, "text.body", "longer than " + std::to_string(kMaxTextBody) + " characters"};
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    begin_message(w, m.address, "text");
    write_key(w, "text");
    w.StartObject();
    write_key(w, "preview_url");
    w.Bool(m.preview_url);
    write_key(w, "body");
    write_string(w, m.body);
    w.EndObject();
    return end_message(w, buf, m.address);
}

Result<std::string> media_request(const MediaMessage& m) {
    if (auto e = check_addressing(m.address)) return *e;
    const std::string kind(to_string(m.kind));
    if (m.link.has_value() == m.media_id.has_value())
        return Error{ErrorCode::missing_field, kind, "exactly one of link and media id is needed"};
    if ((m.link && m.link->empty()) || (m.media_id && m.media_id->empty()))
        return Error{ErrorCode::bad_value, kind + (m.link ? ".link" : ".id"), "must not be empty"};
    if (m.link && !m.link->starts_with("https://") && !m.link->starts_with("http://"))
        return Error{ErrorCode::bad_value, kind + ".link", "not an http(s) URL"};
    if (m.caption) {
        if (m.kind == MediaKind::audio || m.kind == MediaKind::sticker)
            return Error{ErrorCode::bad_value, kind + ".caption", kind + " messages have no caption"};
        if (code_points(*m.caption) > kMaxCaption)
            return Error{ErrorCode::bad_value, kind + ".caption",
                         "longer than " + std::to_string(kMaxCaption) + " characters"};
    }
    if (m.filename && m.kind != MediaKind::document)
        return Error{ErrorCode::bad_value, kind + ".filename", "only documents have a filename"};

    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    begin_message(w, m.address, kind);
    write_key(w, kind);
    w.StartObject();
    write_key(w, m.link ? "link" : "id");
    write_string(w, m.link ? *m.link : *m.media_id);
    if (m.caption) {
        write_key(w, "caption");
        write_string(w, *m.caption);
    }
    if (m.filename) {
        write_key(w, "filename");
        write_string(w, *m.filename);
    }
    w.EndObject();
    return end_message(w, buf, m.address);
}

Result<std::string> template_request(const TemplateMessage& m) {
    if (auto e = check_addressing(m.address)) return *e;
    if (m.name.empty()) return Error{ErrorCode::missing_field, "template.name", "the template name is empty"};
    if (m.language.empty())
        return Error{ErrorCode::missing_field, "template.language.code", "the template language is empty"};
    for (std::size_t i = 0; i < m.components.size(); ++i) {
        const TemplateComponent& c = m.components[i];
        const std::string f = "template.components[" + std::to_string(i) + "]";
        if (c.type.empty()) return Error{ErrorCode::missing_field, f + ".type", "the component type is empty"};
        if (c.type == "button" && (!c.sub_type || !c.index))
            return Error{ErrorCode::missing_field, f, "a button component needs sub_type and index"};
        if (c.index && *c.index < 0) return Error{ErrorCode::bad_value, f + ".index", "must be >= 0"};
        for (std::size_t j = 0; j < c.parameters.size(); ++j) {
            const TemplateParameter& p = c.parameters[j];
            const std::string pf = f + ".parameters[" + std::to_string(j) + "]";
            if (p.type == TemplateParameter::Type::currency && p.currency_code.size() != 3)
                return Error{ErrorCode::bad_value, pf + ".currency.code", "expected an ISO 4217 code"};
            if (is_media(p.type) && p.value.empty())
                return Error{ErrorCode::missing_field, pf, "a media parameter needs a link or an id"};
            if (p.filename && p.type != TemplateParameter::Type::document)
                return Error{ErrorCode::bad_value, pf + ".filename", "only documents have a filename"};
        }
    }

    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    begin_message(w, m.address, "template");
    write_key(w, "template");
    w.StartObject();
    write_key(w, "name");
    write_string(w, m.name);
    write_key(w, "language");
    w.StartObject();
    write_key(w, "code");
    write_string(w, m.language);
    w.EndObject();
    if (!m.components.empty()) {
        write_key(w, "components");
        w.StartArray();
        for (const TemplateComponent& c : m.components) {
            w.StartObject();
            write_key(w, "type");
            write_string(w, c.type);
            if (c.sub_type) {
                write_key(w, "sub_type");
                write_string(w, *c.sub_type);
            }
            if (c.index) {  // a string in Meta's reference
                write_key(w, "index");
                write_string(w, std::to_string(*c.index));
            }
            if (!c.parameters.empty()) {
                write_key(w, "parameters");
                w.StartArray();
                for (const TemplateParameter& p : c.parameters) write_parameter(w, p);
                w.EndArray();
            }
            w.EndObject();
        }
        w.EndArray();
    }
    w.EndObject();
    return end_message(w, buf, m.address);
}

std::string mark_read_request(std::string_view message_id, bool typing) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    write_key(w, "messaging_product");
    w.String("whatsapp");
    write_key(w, "status");
    w.String("read");
    write_key(w, "message_id");
    write_string(w, message_id);
    if (typing) {
        write_key(w, "typing_indicator");
        w.StartObject();
        write_key(w, "type");
        w.String("text");
        w.EndObject();
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

// ---- errors ---------------------------------------------------------------------

std::string_view to_string(FailureKind kind) {
    switch (kind) {
        case FailureKind::rate_limited: return "rate_limited";
        case FailureKind::transient: return "transient";
        case FailureKind::window_closed: return "window_closed";
        case FailureKind::auth: return "auth";
        case FailureKind::recipient: return "recipient";
        case FailureKind::invalid_request: return "invalid_request";
        case FailureKind::template_error: return "template_error";
        case FailureKind::account: return "account";
        case FailureKind::bad_response: return "bad_response";
        case FailureKind::unknown: return "unknown";
    }
    return "unknown";
}

bool is_retryable(FailureKind kind) { return kind == FailureKind::rate_limited || kind == FailureKind::transient; }

// Cloud API error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes):
//
// rate_limited     4 app call limit · 80007 WABA rate limit · 130429 Cloud API
//                  throughput · 131048 spam rate limit (quality) · 131056
//                  business/consumer pair rate limit · 132069 flow throttled ·
//                  133016 register/deregister rate limit
// transient        1 unknown API error · 2 API service down · 131000 something
//                  went wrong · 131016 service unavailable · 131057 account in
//                  maintenance (throughput upgrade) · 133004 server temporarily unavailable
// window_closed    131047 re-engagement: > 24 h since the customer's last message
// auth             0 AuthException · 3 capability · 10 permission denied · 190
//                  access token expired/invalid · 200-299 API permission · 131005 access denied
// recipient        130472 number in an experiment · 131021 recipient = sender ·
//                  131026 undeliverable (no WhatsApp, old app, terms not accepted) ·
//                  131030 not in the test allow-list · 131049 not delivered for
//                  ecosystem health (per-user marketing limit) · 131050 user
//                  stopped marketing messages
// invalid_request  33 bad phone number id · 100 invalid parameter · 131008
//                  parameter missing · 131009 parameter value invalid · 131051
//                  unsupported message type · 131052 media download error ·
//                  131053 media upload error · 131055 method not allowed · 135000 generic user error
// template_error   132000-132068: parameter count mismatch, template missing,
//                  text too long, format policy, parameter format, paused, disabled, flow blocked
// account          368 temporarily blocked (policy) · 130497 country restricted ·
//                  131031 account locked · 131037 display name not approved ·
//                  131042 payment issue · 131045 certificate · 133000-133010 registration
//
// Anything else: HTTP 429 → rate_limited, 5xx → transient, is_transient:true →
// transient, otherwise unknown (not retried).
FailureKind classify(int http_status, std::int64_t code, std::optional<bool> is_transient) {
    switch (code) {
        case 4:
        case 80007:
        case 130429:
        case 131048:
        case 131056:
        case 132069:
        case 133016: return FailureKind::rate_limited;
        case 1:
        case 2:
        case 131000:
        case 131016:
        case 131057:
        case 133004: return FailureKind::transient;
        case 131047: return FailureKind::window_closed;
        case 0:
        case 3:
        case 10:
        case 190:
        case 131005: return FailureKind::auth;
        case 130472:
        case 131021:
        case 131026:
        case 131030:
        case 131049:
        case 131050: return FailureKind::recipient;
        case 33:
        case 100:
        case 131008:
        case 131009:
        case 131051:
        case 131052:
        case 131053:
        case 131055:
        case 135000: return FailureKind::invalid_request;
        case 368:
        case 130497:
        case 131031:
        case 131037:
        case 131042:
        case 131045: return FailureKind::account;
        default: break;
    }
    if (code >= 200 && code <= 299) return FailureKind::auth;
    if (code >= 132000 && code <= 132068) return FailureKind::template_error;
    if (code >= 133000 && code <= 133010) return FailureKind::account;
    if (http_status == 429) return FailureKind::rate_limited;
    if (http_status >= 500 && http_status <= 599) return FailureKind::transient;
    if (is_transient.value_or(false)) return FailureKind::transient;
    return FailureKind::unknown;
}

SendResponse parse_send_response(int http_status, std::string_view body) {
    json::LocalDocument<4096> doc;
    const bool parsed = json::parse(body, doc, json::Limits{1 << 20, 32}, nullptr) && doc.doc().IsObject();
    const json::Value* err = parsed ? member(doc.doc(), "error") : nullptr;

    if (http_status >= 200 && http_status <= 299 && parsed && !err) {
        const json::Value* messages = member(doc.doc(), "messages");
        if (messages && messages->IsArray() && !messages->Empty()) {
            const json::Value& first = (*messages)[0];
            if (auto id = string_member(first, "id")) {
                SendAccepted ok;
                ok.message_id = std::move(*id);
                ok.message_status = string_member(first, "message_status");
                const json::Value* contacts = member(doc.doc(), "contacts");
                if (contacts && contacts->IsArray() && !contacts->Empty())
                    ok.wa_id = string_member((*contacts)[0], "wa_id");
                return ok;
            }
        }
        GraphError e;
        e.http_status = http_status;
        e.message = "success response without messages[0].id";
        e.kind = FailureKind::bad_response;
        return e;
    }

    GraphError e;
    e.http_status = http_status;
    if (err && err->IsObject()) {
        e.code = int_member(*err, "code").value_or(-1);
        e.subcode = int_member(*err, "error_subcode");
        e.message = string_member(*err, "message").value_or("");
        e.type = string_member(*err, "type");
        e.fbtrace_id = string_member(*err, "fbtrace_id");
        if (const json::Value* t = member(*err, "is_transient"); t && t->IsBool()) e.is_transient = t->GetBool();
        if (const json::Value* data = member(*err, "error_data")) e.details = string_member(*data, "details");
    } else {
        e.code = -1;  // not a Graph error body (proxy page, truncated, …)
        e.message = parsed ? "response without an error object" : "unreadable response: " + json::excerpt(body);
    }
    e.kind = classify(http_status, e.code, e.is_transient);  // -1 (no code) is in no row of the table
    if (http_status >= 200 && http_status <= 299 && e.kind == FailureKind::unknown) e.kind = FailureKind::bad_response;
    return e;
}

}  // namespace omnibus::connectors::whatsapp
