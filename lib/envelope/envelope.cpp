// Envelope <-> CloudEvent record: a streaming JSON writer on encode, a bounded
// DOM walk with per-field errors on decode, and the value rules of validate().
#include "envelope/envelope.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>

namespace omnibus::envelope {

// validate() with the channel check optional (a reply that leaves the channel to the pipeline).
Status validate_message(const Envelope& e, bool check_channel);

namespace {

using json::Value;
using json::view;
using json::Writer;

// ---- enum names --------------------------------------------------------------

constexpr std::array<std::string_view, 2> kDirectionNames = {"inbound", "outbound"};
constexpr std::array<std::string_view, 3> kSentimentNames = {"negative", "neutral", "positive"};
constexpr std::array<std::string_view, 2> kRouteTargetNames = {"ai", "human"};
constexpr std::array<std::string_view, 15> kContentTypeNames = {
    "text",        "image",  "audio",    "video",    "document", "sticker",  "location",   "contacts",
    "interactive", "button", "reaction", "order",    "template", "system",   "unsupported"};
constexpr std::array<std::string_view, 6> kAttachmentTypeNames = {"image",   "audio",   "video",
                                                                  "document", "sticker", "other"};

template <class E, std::size_t N>
std::string_view name_of(E v, const std::array<std::string_view, N>& names, std::size_t fallback) {
    const auto i = static_cast<std::size_t>(v);
    return names[i < N ? i : fallback];
}

template <class E, std::size_t N>
std::optional<E> find_name(std::string_view s, const std::array<std::string_view, N>& names) {
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == s) return static_cast<E>(i);
    return std::nullopt;
}

// Top-level body keys, in the order encode writes them.
constexpr std::array<std::string_view, 18> kTopLevelKeys = {
    "schema_version", "id",          "channel",         "direction", "sender",              "recipient",
    "content",        "received_at", "platform",        "customer_id", "conversation_id",   "language",
    "language_confidence", "intent", "entities",        "sentiment", "route",               "context"};

bool is_known_top_level(std::string_view name) {
    for (const std::string_view k : kTopLevelKeys)
        if (k == name) return true;
    return false;
}

// Values are echoed into errors, which end up in logs and headers.
std::string quoted(std::string_view v) { return "\"" + json::excerpt(v) + "\""; }

// ---- encode ------------------------------------------------------------------

struct Scratch {
    rapidjson::StringBuffer buf;
    Writer w{buf};
};

// One writer and buffer per thread, reused: no allocation once warm.
Scratch& scratch() {
    thread_local Scratch s;
    s.buf.Clear();
    s.w.Reset(s.buf);
    return s;
}

void release_if_huge(Scratch& s) {
    if (s.buf.GetSize() > 256 * 1024) {
        s.buf.Clear();
        s.buf.ShrinkToFit();
    }
}

class BodyWriter {
public:
    explicit BodyWriter(Writer& w) : w_(w) {}

    void envelope(const Envelope& e) {
        w_.StartObject();
        key("schema_version");
        w_.Int(e.schema_version);
        field("id", e.id);
        if (!e.channel.type.empty() || !e.channel.name.empty()) {  // absent only on a reply (channel_optional)
            key("channel");
            w_.StartObject();
            field("type", e.channel.type);
            field("name", e.channel.name);
            w_.EndObject();
        }
        field("direction", to_string(e.direction));
        key("sender");
        participant(e.sender);
        if (e.recipient) {
            key("recipient");
            participant(*e.recipient);
        }
        key("content");
        content(e.content);
        field("received_at", e.received_at);
        if (e.platform) {
            key("platform");
            w_.StartObject();
            field("message_id", e.platform->message_id);
            field("timestamp", e.platform->timestamp);
            if (e.platform->payload) {
                key("payload");
                json::write_raw(w_, e.platform->payload->text());
            }
            w_.EndObject();
        }
        field("customer_id", e.customer_id);
        field("conversation_id", e.conversation_id);
        field("language", e.language);
        if (e.language_confidence) number("language_confidence", *e.language_confidence);
        if (e.intent) {
            key("intent");
            w_.StartObject();
            field("name", e.intent->name);
            number("confidence", e.intent->confidence);
            field("rule", e.intent->rule);
            w_.EndObject();
        }
        if (!e.entities.empty()) {
            key("entities");
            w_.StartArray();
            for (const Entity& x : e.entities) {
                w_.StartObject();
                field("type", x.type);
                field("value", x.value);
                w_.EndObject();
            }
            w_.EndArray();
        }
        if (e.sentiment) {
            key("sentiment");
            w_.StartObject();
            field("label", to_string(e.sentiment->label));
            number("score", e.sentiment->score);
            w_.EndObject();
        }
        if (e.route) {
            key("route");
            w_.StartObject();
            field("target", to_string(e.route->target));
            field("rule", e.route->rule);
            key("priority");
            w_.Int(e.route->priority);
            field("queue", e.route->queue);
            strings("flags", e.route->flags);
            w_.EndObject();
        }
        if (!e.context.empty()) {
            key("context");
            w_.StartArray();
            for (const ContextEntry& c : e.context) {
                w_.StartObject();
                field("id", c.id);
                field("direction", to_string(c.direction));
                field("channel", c.channel);
                field("text", c.text);
                field("at", c.at);
                field("author", c.author);
                w_.EndObject();
            }
            w_.EndArray();
        }
        for (const UnknownField& u : e.unknown_fields) {
            if (is_known_top_level(u.name)) continue;  // never emit a key twice
            json::write_string(w_, u.name);
            json::write_raw(w_, u.value.text());
        }
        w_.EndObject();
    }

private:
    void key(std::string_view k) { json::write_key(w_, k); }
    void field(std::string_view k, std::string_view v) {
        key(k);
        json::write_string(w_, v);
    }
    void field(std::string_view k, const std::string& v) { field(k, std::string_view(v)); }
    void field(std::string_view k, const std::optional<std::string>& v) {
        if (v) field(k, std::string_view(*v));
    }
    void field(std::string_view k, Timestamp t) {
        char buf[kTimestampLength];
        format_rfc3339(t, buf);
        key(k);
        w_.plain_string({buf, kTimestampLength});  // digits, '-', ':', '.', 'T', 'Z'
    }
    void field(std::string_view k, const std::optional<Timestamp>& t) {
        if (t) field(k, *t);
    }
    // NaN and infinities have no JSON form: the key is left out (validate() reports it).
    void number(std::string_view k, double v) {
        if (!std::isfinite(v)) return;
        key(k);
        w_.Double(v);
    }
    void strings(std::string_view k, const std::vector<std::string>& v) {
        if (v.empty()) return;
        key(k);
        w_.StartArray();
        for (const std::string& s : v) json::write_string(w_, s);
        w_.EndArray();
    }
    void participant(const Participant& p) {
        w_.StartObject();
        field("id", p.id);
        field("display_name", p.display_name);
        strings("identities", p.identities);
        if (p.verified_claims) {
            key("verified_claims");
            w_.StartObject();
            field("shop_customer_id", p.verified_claims->shop_customer_id);
            field("email", p.verified_claims->email);
            field("phone", p.verified_claims->phone);
            w_.EndObject();
        }
        w_.EndObject();
    }
    void content(const Content& c) {
        w_.StartObject();
        field("type", to_string(c.type));
        field("subject", c.subject);
        field("text", c.text);
        if (!c.attachments.empty()) {
            key("attachments");
            w_.StartArray();
            for (const Attachment& a : c.attachments) {
                w_.StartObject();
                field("type", to_string(a.type));
                field("url", a.url);
                field("media_id", a.media_id);
                field("mime_type", a.mime_type);
                field("filename", a.filename);
                if (a.size) {
                    key("size");
                    w_.Uint64(*a.size);
                }
                field("caption", a.caption);
                field("sha256", a.sha256);
                w_.EndObject();
            }
            w_.EndArray();
        }
        if (c.location) {
            key("location");
            w_.StartObject();
            number("lat", c.location->lat);
            number("lon", c.location->lon);
            field("name", c.location->name);
            field("address", c.location->address);
            w_.EndObject();
        }
        field("reply_to", c.reply_to);
        w_.EndObject();
    }

    Writer& w_;
};

// ---- decode ------------------------------------------------------------------

// Where a value sits in the body; rendered to "sender.identities[1]" only when
// an error is reported.
struct Path {
    const Path* parent = nullptr;
    std::string_view key;
    std::size_t index = 0;
    bool is_index = false;

    Path child(std::string_view k) const { return Path{this, k, 0, false}; }
    Path at(std::size_t i) const { return Path{this, {}, i, true}; }

    std::string str() const {
        std::string tail;
        for (const Path* p = this; p; p = p->parent) {
            std::string part;
            if (p->is_index)
                part = "[" + std::to_string(p->index) + "]";
            else if (!p->key.empty())
                part = std::string(p->key);
            else
                continue;  // the root
            if (!tail.empty() && tail.front() != '[') part += '.';
            tail.insert(0, part);
        }
        return tail.empty() ? std::string("body") : json::excerpt(tail, 200);
    }
};

class Decoder {
public:
    std::optional<Error> error;

    bool fail(ErrorCode code, const Path& p, std::string message) {
        error = Error{code, p.str(), std::move(message)};
        return false;
    }
    bool wrong_type(const Path& p, const Value& v, const char* expected) {
        return fail(ErrorCode::wrong_type, p, std::string("expected ") + expected + ", got " + json::type_name(v));
    }
    bool null_required(const Path& p) { return fail(ErrorCode::missing_field, p, "required, got null"); }

    bool str(const Value& v, const Path& p, std::string& out) {
        if (!v.IsString()) return v.IsNull() ? null_required(p) : wrong_type(p, v, "a string");
        out.assign(v.GetString(), v.GetStringLength());
        return true;
    }
    bool opt_str(const Value& v, const Path& p, std::optional<std::string>& out) {
        if (v.IsNull()) return true;
        if (!v.IsString()) return wrong_type(p, v, "a string");
        out.emplace(v.GetString(), v.GetStringLength());
        return true;
    }
    bool time(const Value& v, const Path& p, Timestamp& out) {
        if (!v.IsString()) return v.IsNull() ? null_required(p) : wrong_type(p, v, "a string");
        const auto t = parse_rfc3339(view(v));
        if (!t) return fail(ErrorCode::bad_value, p, "not an RFC 3339 date-time: " + quoted(view(v)));
        out = *t;
        return true;
    }
    bool opt_time(const Value& v, const Path& p, std::optional<Timestamp>& out) {
        if (v.IsNull()) return true;
        Timestamp t;
        if (!time(v, p, t)) return false;
        out = t;
        return true;
    }
    bool number(const Value& v, const Path& p, double& out) {
        if (!v.IsNumber()) return v.IsNull() ? null_required(p) : wrong_type(p, v, "a number");
        out = v.GetDouble();
        return true;
    }
    bool opt_number(const Value& v, const Path& p, std::optional<double>& out) {
        if (v.IsNull()) return true;
        if (!v.IsNumber()) return wrong_type(p, v, "a number");
        out = v.GetDouble();
        return true;
    }
    bool integer(const Value& v, const Path& p, int& out) {
        if (!v.IsInt()) return v.IsNull() ? null_required(p) : wrong_type(p, v, "an integer (32-bit)");
        out = v.GetInt();
        return true;
    }
    bool opt_size(const Value& v, const Path& p, std::optional<std::uint64_t>& out) {
        if (v.IsNull()) return true;
        if (!v.IsUint64()) return wrong_type(p, v, "a non-negative integer");
        out = v.GetUint64();
        return true;
    }
    bool strings(const Value& v, const Path& p, std::vector<std::string>& out) {
        if (v.IsNull()) return true;
        if (!v.IsArray()) return wrong_type(p, v, "an array");
        out.reserve(v.Size());
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
            if (!str(v[i], p.at(i), out.emplace_back())) return false;
        }
        return true;
    }
    template <class E, std::size_t N>
    bool closed_enum(const Value& v, const Path& p, const std::array<std::string_view, N>& names, E& out) {
        std::string s;
        if (!str(v, p, s)) return false;
        if (const auto e = find_name<E>(s, names)) {
            out = *e;
            return true;
        }
        std::string allowed;
        for (const std::string_view n : names) {
            if (!allowed.empty()) allowed += ", ";
            allowed += n;
        }
        return fail(ErrorCode::bad_value, p, "expected one of " + allowed + ", got " + quoted(s));
    }
    // An optional object: absent/null leaves `out` empty, otherwise it is read.
    template <class T, class Read>
    bool opt_object(const Value& v, const Path& p, std::optional<T>& out, Read read) {
        if (v.IsNull()) return true;
        return read(*this, v, p, out.emplace());
    }
    template <class T, class Read>
    bool objects(const Value& v, const Path& p, std::vector<T>& out, Read read) {
        if (v.IsNull()) return true;
        if (!v.IsArray()) return wrong_type(p, v, "an array");
        out.reserve(v.Size());
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
            if (!read(*this, v[i], p.at(i), out.emplace_back())) return false;
        return true;
    }
};

// One member of an object of the contract: its key, whether it is required,
// and how it is read into T.
template <class T>
struct Field {
    std::string_view name;
    bool required;
    bool (*read)(Decoder&, const Value&, const Path&, T&);
};

// Reads the members of object v that `fields` names; keys it does not name are
// ignored (or handed to on_unknown); a key named twice is an error.
template <class T, std::size_t N>
bool read_object(Decoder& d, const Value& v, const Path& p, T& out, const std::array<Field<T>, N>& fields,
                 bool (*on_unknown)(Decoder&, std::string_view, const Value&, const Path&, T&) = nullptr) {
    static_assert(N <= 32);
    if (!v.IsObject()) return v.IsNull() ? d.null_required(p) : d.wrong_type(p, v, "an object");
    std::uint32_t seen = 0;
    for (auto m = v.MemberBegin(); m != v.MemberEnd(); ++m) {
        const std::string_view k = view(m->name);
        std::size_t i = 0;
        while (i < N && fields[i].name != k) ++i;
        const Path fp = p.child(k);
        if (i == N) {
            if (on_unknown && !on_unknown(d, k, m->value, fp, out)) return false;
            continue;
        }
        if (seen & (1u << i)) return d.fail(ErrorCode::duplicate_key, fp, "key appears twice");
        seen |= 1u << i;
        if (!fields[i].read(d, m->value, fp, out)) return false;
    }
    for (std::size_t i = 0; i < N; ++i)
        if (fields[i].required && !(seen & (1u << i)))
            return d.fail(ErrorCode::missing_field, p.child(fields[i].name), "required, missing");
    return true;
}

bool read_channel(Decoder& dec, const Value& val, const Path& path, Channel& out) {
    static constexpr std::array<Field<Channel>, 2> kFields{{
        {"type", true, [](Decoder& d, const Value& v, const Path& p, Channel& o) { return d.str(v, p, o.type); }},
        {"name", true, [](Decoder& d, const Value& v, const Path& p, Channel& o) { return d.str(v, p, o.name); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_claims(Decoder& dec, const Value& val, const Path& path, VerifiedClaims& out) {
    using C = VerifiedClaims;
    static constexpr std::array<Field<C>, 3> kFields{{
        {"shop_customer_id", false,
         [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.shop_customer_id); }},
        {"email", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.email); }},
        {"phone", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.phone); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_participant(Decoder& dec, const Value& val, const Path& path, Participant& out) {
    using P = Participant;
    static constexpr std::array<Field<P>, 4> kFields{{
        {"id", true, [](Decoder& d, const Value& v, const Path& p, P& o) { return d.str(v, p, o.id); }},
        {"display_name", false,
         [](Decoder& d, const Value& v, const Path& p, P& o) { return d.opt_str(v, p, o.display_name); }},
        {"identities", false,
         [](Decoder& d, const Value& v, const Path& p, P& o) { return d.strings(v, p, o.identities); }},
        {"verified_claims", false,
         [](Decoder& d, const Value& v, const Path& p, P& o) {
             return d.opt_object(v, p, o.verified_claims, read_claims);
         }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_attachment(Decoder& dec, const Value& val, const Path& path, Attachment& out) {
    using A = Attachment;
    static constexpr std::array<Field<A>, 8> kFields{{
        {"type", true,
         [](Decoder& d, const Value& v, const Path& p, A& o) {
             std::string s;
             if (!d.str(v, p, s)) return false;
             o.type = parse_attachment_type(s);
             return true;
         }},
        {"url", false, [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_str(v, p, o.url); }},
        {"media_id", false,
         [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_str(v, p, o.media_id); }},
        {"mime_type", false,
         [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_str(v, p, o.mime_type); }},
        {"filename", false,
         [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_str(v, p, o.filename); }},
        {"size", false, [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_size(v, p, o.size); }},
        {"caption", false,
         [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_str(v, p, o.caption); }},
        {"sha256", false, [](Decoder& d, const Value& v, const Path& p, A& o) { return d.opt_str(v, p, o.sha256); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_location(Decoder& dec, const Value& val, const Path& path, Location& out) {
    using L = Location;
    static constexpr std::array<Field<L>, 4> kFields{{
        {"lat", true, [](Decoder& d, const Value& v, const Path& p, L& o) { return d.number(v, p, o.lat); }},
        {"lon", true, [](Decoder& d, const Value& v, const Path& p, L& o) { return d.number(v, p, o.lon); }},
        {"name", false, [](Decoder& d, const Value& v, const Path& p, L& o) { return d.opt_str(v, p, o.name); }},
        {"address", false,
         [](Decoder& d, const Value& v, const Path& p, L& o) { return d.opt_str(v, p, o.address); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_content(Decoder& dec, const Value& val, const Path& path, Content& out) {
    using C = Content;
    static constexpr std::array<Field<C>, 6> kFields{{
        {"type", true,
         [](Decoder& d, const Value& v, const Path& p, C& o) {
             std::string s;
             if (!d.str(v, p, s)) return false;
             o.type = parse_content_type(s);
             return true;
         }},
        {"subject", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.subject); }},
        {"text", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.text); }},
        {"attachments", false,
         [](Decoder& d, const Value& v, const Path& p, C& o) {
             return d.objects(v, p, o.attachments, read_attachment);
         }},
        {"location", false,
         [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_object(v, p, o.location, read_location); }},
        {"reply_to", false,
         [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.reply_to); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_platform(Decoder& dec, const Value& val, const Path& path, Platform& out) {
    using P = Platform;
    static constexpr std::array<Field<P>, 3> kFields{{
        {"message_id", true, [](Decoder& d, const Value& v, const Path& p, P& o) { return d.str(v, p, o.message_id); }},
        {"timestamp", false,
         [](Decoder& d, const Value& v, const Path& p, P& o) { return d.opt_time(v, p, o.timestamp); }},
        // Any JSON value, kept as is (null included: it is the platform's).
        {"payload", false,
         [](Decoder&, const Value& v, const Path&, P& o) {
             o.payload = json::RawJson::from_value(v);
             return true;
         }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_intent(Decoder& dec, const Value& val, const Path& path, Intent& out) {
    using I = Intent;
    static constexpr std::array<Field<I>, 3> kFields{{
        {"name", true, [](Decoder& d, const Value& v, const Path& p, I& o) { return d.str(v, p, o.name); }},
        {"confidence", true,
         [](Decoder& d, const Value& v, const Path& p, I& o) { return d.number(v, p, o.confidence); }},
        {"rule", false, [](Decoder& d, const Value& v, const Path& p, I& o) { return d.opt_str(v, p, o.rule); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_entity(Decoder& dec, const Value& val, const Path& path, Entity& out) {
    static constexpr std::array<Field<Entity>, 2> kFields{{
        {"type", true, [](Decoder& d, const Value& v, const Path& p, Entity& o) { return d.str(v, p, o.type); }},
        {"value", true, [](Decoder& d, const Value& v, const Path& p, Entity& o) { return d.str(v, p, o.value); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_sentiment(Decoder& dec, const Value& val, const Path& path, Sentiment& out) {
    using S = Sentiment;
    static constexpr std::array<Field<S>, 2> kFields{{
        {"label", true,
         [](Decoder& d, const Value& v, const Path& p, S& o) { return d.closed_enum(v, p, kSentimentNames, o.label); }},
        {"score", true, [](Decoder& d, const Value& v, const Path& p, S& o) { return d.number(v, p, o.score); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_route(Decoder& dec, const Value& val, const Path& path, Route& out) {
    using R = Route;
    static constexpr std::array<Field<R>, 5> kFields{{
        {"target", true,
         [](Decoder& d, const Value& v, const Path& p, R& o) {
             return d.closed_enum(v, p, kRouteTargetNames, o.target);
         }},
        {"rule", false, [](Decoder& d, const Value& v, const Path& p, R& o) { return d.opt_str(v, p, o.rule); }},
        {"priority", true, [](Decoder& d, const Value& v, const Path& p, R& o) { return d.integer(v, p, o.priority); }},
        {"queue", false, [](Decoder& d, const Value& v, const Path& p, R& o) { return d.opt_str(v, p, o.queue); }},
        {"flags", false, [](Decoder& d, const Value& v, const Path& p, R& o) { return d.strings(v, p, o.flags); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool read_context_entry(Decoder& dec, const Value& val, const Path& path, ContextEntry& out) {
    using C = ContextEntry;
    static constexpr std::array<Field<C>, 6> kFields{{
        {"id", true, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.str(v, p, o.id); }},
        {"direction", true,
         [](Decoder& d, const Value& v, const Path& p, C& o) {
             return d.closed_enum(v, p, kDirectionNames, o.direction);
         }},
        {"channel", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.channel); }},
        {"text", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.text); }},
        {"at", true, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.time(v, p, o.at); }},
        {"author", false, [](Decoder& d, const Value& v, const Path& p, C& o) { return d.opt_str(v, p, o.author); }},
    }};
    return read_object(dec, val, path, out, kFields);
}

bool keep_unknown(Decoder& d, std::string_view name, const Value& v, const Path& p, Envelope& e) {
    for (const UnknownField& u : e.unknown_fields)
        if (u.name == name) return d.fail(ErrorCode::duplicate_key, p, "key appears twice");
    e.unknown_fields.push_back(UnknownField{std::string(name), json::RawJson::from_value(v)});
    return true;
}

bool read_envelope(Decoder& dec, const Value& val, Envelope& out) {
    using E = Envelope;
    static constexpr std::array<Field<E>, 18> kFields{{
        {"schema_version", true,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.integer(v, p, o.schema_version); }},
        {"id", true, [](Decoder& d, const Value& v, const Path& p, E& o) { return d.str(v, p, o.id); }},
        // Required unless DecodeOptions::channel_optional: envelope_from checks it.
        {"channel", false, [](Decoder& d, const Value& v, const Path& p, E& o) { return read_channel(d, v, p, o.channel); }},
        {"direction", true,
         [](Decoder& d, const Value& v, const Path& p, E& o) {
             return d.closed_enum(v, p, kDirectionNames, o.direction);
         }},
        {"sender", true,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return read_participant(d, v, p, o.sender); }},
        {"recipient", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_object(v, p, o.recipient, read_participant); }},
        {"content", true, [](Decoder& d, const Value& v, const Path& p, E& o) { return read_content(d, v, p, o.content); }},
        {"received_at", true, [](Decoder& d, const Value& v, const Path& p, E& o) { return d.time(v, p, o.received_at); }},
        {"platform", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_object(v, p, o.platform, read_platform); }},
        {"customer_id", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_str(v, p, o.customer_id); }},
        {"conversation_id", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_str(v, p, o.conversation_id); }},
        {"language", false, [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_str(v, p, o.language); }},
        {"language_confidence", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_number(v, p, o.language_confidence); }},
        {"intent", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_object(v, p, o.intent, read_intent); }},
        {"entities", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.objects(v, p, o.entities, read_entity); }},
        {"sentiment", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_object(v, p, o.sentiment, read_sentiment); }},
        {"route", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.opt_object(v, p, o.route, read_route); }},
        {"context", false,
         [](Decoder& d, const Value& v, const Path& p, E& o) { return d.objects(v, p, o.context, read_context_entry); }},
    }};
    const Path root;
    if (!val.IsObject()) return dec.wrong_type(root, val, "an object");
    return read_object(dec, val, root, out, kFields, keep_unknown);
}

Result<Envelope> envelope_from(const Value& root, bool channel_optional) {
    Decoder d;
    Envelope env;
    env.schema_version = 0;  // must come from the body
    if (!read_envelope(d, root, env)) return *std::move(d.error);
    const bool has_channel = root.HasMember("channel");
    if (!has_channel && !channel_optional) return Error{ErrorCode::missing_field, "channel", "required, missing"};
    if (Status st = validate_message(env, has_channel); !st) return st.error();
    return env;
}

// ---- validate ----------------------------------------------------------------

bool token_char(char c, bool upper_ok, std::string_view extra) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (upper_ok && c >= 'A' && c <= 'Z') ||
           extra.find(c) != std::string_view::npos;
}

bool is_token(std::string_view s, bool upper_ok, std::string_view extra) {
    if (s.empty()) return false;
    for (const char c : s)
        if (!token_char(c, upper_ok, extra)) return false;
    return true;
}

// BCP 47 in practice ("en", "zh-Hant", "pt-BR", "es-419"): the schema's
// ^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$, at most 35 chars.
bool is_language_tag(std::string_view s) {
    if (s.size() > 35) return false;
    std::size_t run = 0;
    bool first = true;
    for (const char c : s) {
        if (c == '-') {
            if (first ? run < 2 : run == 0) return false;
            run = 0;
            first = false;
            continue;
        }
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && !first)) return false;
        if (++run > (first ? 3u : 8u)) return false;
    }
    return first ? run >= 2 : run > 0;
}

bool is_sha256(std::string_view s) {
    if (s.size() != 64) return false;
    for (const char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    return true;
}

bool in_range(double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; }

// A field name for an error, put together only when there is one:
// a + b + "[index]" + c, e.g. "content.attachments" [1] ".url".
struct Where {
    std::string_view a, b;
    std::size_t index = std::string_view::npos;
    std::string_view c;

    Where(const char* name) : a(name) {}  // NOLINT: implicit by design
    Where(std::string_view x, std::string_view y) : a(x), b(y) {}
    Where(std::string_view x, std::size_t i, std::string_view y) : a(x), index(i), c(y) {}
    Where(std::string_view x, std::string_view y, std::size_t i) : a(x), b(y), index(i) {}

    std::string str() const {
        std::string s(a);
        s += b;
        if (index != std::string_view::npos) {
            s += '[';
            s += std::to_string(index);
            s += ']';
        }
        s += c;
        return s;
    }
};

class Validator {
public:
    std::optional<Error> error;

    bool fail(ErrorCode code, const Where& field, std::string message) {
        if (!error) error = Error{code, field.str(), std::move(message)};
        return false;
    }
    bool nonempty(std::string_view v, const Where& field) {
        return !v.empty() || fail(ErrorCode::bad_value, field, "must not be empty");
    }
    bool nonempty_opt(const std::optional<std::string>& v, const Where& field) {
        return !v || nonempty(*v, field);
    }
    bool identity(std::string_view v, const Where& field) {
        return is_identity(v) ||
               fail(ErrorCode::bad_value, field, "not an identity string (scheme:value): " + quoted(v));
    }
    bool range(double v, double lo, double hi, const Where& field) {
        if (in_range(v, lo, hi)) return true;
        return fail(ErrorCode::bad_value, field,
                    std::isfinite(v) ? "out of range " + trim(lo) + ".." + trim(hi) + ": " + trim(v)
                                     : std::string("not a finite number"));
    }
    bool participant(const Participant& p, std::string_view f) {
        if (!identity(p.id, {f, ".id"})) return false;
        if (!nonempty_opt(p.display_name, {f, ".display_name"})) return false;
        for (std::size_t i = 0; i < p.identities.size(); ++i)
            if (!identity(p.identities[i], {f, ".identities", i})) return false;
        if (p.verified_claims) {
            const VerifiedClaims& c = *p.verified_claims;
            if (!nonempty_opt(c.shop_customer_id, {f, ".verified_claims.shop_customer_id"}) ||
                !nonempty_opt(c.email, {f, ".verified_claims.email"}) ||
                !nonempty_opt(c.phone, {f, ".verified_claims.phone"}))
                return false;
        }
        return true;
    }

    static std::string trim(double v) {
        std::string s = std::to_string(v);
        while (s.size() > 1 && s.back() == '0') s.pop_back();
        if (!s.empty() && s.back() == '.') s.pop_back();
        return s;
    }
};

}  // namespace

// ---- public ------------------------------------------------------------------

std::string_view to_string(Direction v) { return name_of(v, kDirectionNames, 0); }
std::string_view to_string(SentimentLabel v) { return name_of(v, kSentimentNames, 1); }
std::string_view to_string(RouteTarget v) { return name_of(v, kRouteTargetNames, 1); }
std::string_view to_string(ContentType v) { return name_of(v, kContentTypeNames, kContentTypeNames.size() - 1); }
std::string_view to_string(AttachmentType v) {
    return name_of(v, kAttachmentTypeNames, kAttachmentTypeNames.size() - 1);
}
std::optional<Direction> parse_direction(std::string_view s) { return find_name<Direction>(s, kDirectionNames); }
std::optional<SentimentLabel> parse_sentiment_label(std::string_view s) {
    return find_name<SentimentLabel>(s, kSentimentNames);
}
std::optional<RouteTarget> parse_route_target(std::string_view s) {
    return find_name<RouteTarget>(s, kRouteTargetNames);
}
ContentType parse_content_type(std::string_view s) {
    return find_name<ContentType>(s, kContentTypeNames).value_or(ContentType::unsupported);
}
AttachmentType parse_attachment_type(std::string_view s) {
    return find_name<AttachmentType>(s, kAttachmentTypeNames).value_or(AttachmentType::other);
}

bool is_identity(std::string_view s) {
    const std::size_t colon = s.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size()) return false;
    return is_token(s.substr(0, colon), false, "_-");
}

Status validate(const Envelope& e) { return validate_message(e, true); }

Status validate_message(const Envelope& e, bool check_channel) {
    Validator v;
    if (e.schema_version < 1) return Error{ErrorCode::bad_value, "schema_version", "must be >= 1"};
    if (!v.nonempty(e.id, "id")) return *v.error;
    // The id is also the ce_id header: printable UTF-8, like every header value.
    if (std::any_of(e.id.begin(), e.id.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7F; }))
        return Error{ErrorCode::bad_value, "id", "must not contain control characters"};
    if (!json::is_valid_utf8(e.id)) return Error{ErrorCode::bad_value, "id", "not valid UTF-8"};
    if (check_channel && !is_token(e.channel.type, false, "_-"))
        return Error{ErrorCode::bad_value, "channel.type", "must match [a-z0-9_-]+, got " + quoted(e.channel.type)};
    if (check_channel && !is_token(e.channel.name, true, "._-"))
        return Error{ErrorCode::bad_value, "channel.name",
                     "must match [A-Za-z0-9._-]+, got " + quoted(e.channel.name)};
    if (!v.participant(e.sender, "sender")) return *v.error;
    if (e.recipient && !v.participant(*e.recipient, "recipient")) return *v.error;

    const Content& c = e.content;
    if (!v.nonempty_opt(c.reply_to, "content.reply_to")) return *v.error;
    for (std::size_t i = 0; i < c.attachments.size(); ++i) {
        const Attachment& a = c.attachments[i];
        if (!a.url && !a.media_id)
            return Error{ErrorCode::missing_field, Where("content.attachments", i, "").str(), "needs url or media_id"};
        if (!v.nonempty_opt(a.url, {"content.attachments", i, ".url"}) ||
            !v.nonempty_opt(a.media_id, {"content.attachments", i, ".media_id"}))
            return *v.error;
        if (a.sha256 && !is_sha256(*a.sha256))
            return Error{ErrorCode::bad_value, Where("content.attachments", i, ".sha256").str(), "expected 64 hex digits"};
    }
    if (c.type == ContentType::location && !c.location)
        return Error{ErrorCode::missing_field, "content.location", "required when content.type is location"};
    if (c.location && (!v.range(c.location->lat, -90, 90, "content.location.lat") ||
                       !v.range(c.location->lon, -180, 180, "content.location.lon")))
        return *v.error;

    if (e.direction == Direction::inbound && !e.platform)
        return Error{ErrorCode::missing_field, "platform", "required on inbound messages"};
    if (e.platform && !v.nonempty(e.platform->message_id, "platform.message_id")) return *v.error;

    if (!v.nonempty_opt(e.customer_id, "customer_id") || !v.nonempty_opt(e.conversation_id, "conversation_id"))
        return *v.error;
    if (e.language && !is_language_tag(*e.language))
        return Error{ErrorCode::bad_value, "language", "not a BCP 47 language tag: " + quoted(*e.language)};
    if (e.language_confidence && !v.range(*e.language_confidence, 0, 1, "language_confidence")) return *v.error;
    if (e.intent && (!v.nonempty(e.intent->name, "intent.name") ||
                     !v.range(e.intent->confidence, 0, 1, "intent.confidence")))
        return *v.error;
    for (std::size_t i = 0; i < e.entities.size(); ++i)
        if (!v.nonempty(e.entities[i].type, {"entities", i, ".type"})) return *v.error;
    if (e.sentiment && !v.range(e.sentiment->score, -1, 1, "sentiment.score")) return *v.error;
    for (std::size_t i = 0; i < e.context.size(); ++i)
        if (!v.nonempty(e.context[i].id, {"context", i, ".id"})) return *v.error;
    for (std::size_t i = 0; i < e.unknown_fields.size(); ++i) {
        const std::string& n = e.unknown_fields[i].name;
        if (is_known_top_level(n))
            return Error{ErrorCode::bad_value, "unknown_fields[" + std::to_string(i) + "]",
                         "name is a known field: " + quoted(n)};
    }
    return {};
}

CloudEvent attributes_of(const Envelope& env) {
    CloudEvent ce;
    ce.id = env.id;
    ce.source = channel_source(env.channel.name);
    ce.type = env.direction == Direction::inbound ? event_type::message_inbound : event_type::message_outbound;
    ce.time = env.received_at;
    ce.dataschema = std::string(kEnvelopeSchemaUri);
    return ce;
}

std::string encode_body(const Envelope& env) {
    Scratch& s = scratch();
    BodyWriter(s.w).envelope(env);
    std::string out(s.buf.GetString(), s.buf.GetSize());
    release_if_huge(s);
    return out;
}

kafka::Record encode(const Envelope& env, std::string key) {
    return to_record(attributes_of(env), std::move(key), encode_body(env));
}

std::optional<std::string> with_customer_id(std::string_view body, std::string_view customer_id) {
    if (customer_id.empty() || customer_id.size() > 256) return std::nullopt;
    for (char c : customer_id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' && c != '-')
            return std::nullopt;
    // A member named customer_id, even null (decoded as absent) or under an escaped name,
    // would be named twice. Text that merely mentions it only costs the fast path.
    if (body.find("\"customer_id\"") != std::string_view::npos || body.find("\\u") != std::string_view::npos)
        return std::nullopt;
    auto skip_space_back = [&](std::size_t i) {  // JSON's four whitespace bytes before i
        while (i > 0 && (body[i - 1] == ' ' || body[i - 1] == '\n' || body[i - 1] == '\r' || body[i - 1] == '\t')) --i;
        return i;
    };
    const std::size_t end = skip_space_back(body.size());
    if (end < 2 || body[end - 1] != '}') return std::nullopt;
    const std::size_t last = end - 1;  // the object's closing brace; is anything before it?
    const std::size_t before = skip_space_back(last);
    const bool empty_object = before > 0 && body[before - 1] == '{';
    constexpr std::string_view kName = "\"customer_id\":\"";
    std::string out;
    out.reserve(last + kName.size() + customer_id.size() + 3);
    out.append(body.substr(0, last));
    if (!empty_object) out += ',';
    out.append(kName);
    out.append(customer_id);
    out.append("\"}");
    return out;
}

Result<Envelope> decode_body(std::string_view body, const DecodeOptions& options) {
    json::LocalDocument<8192> local;
    json::ParseError pe;
    if (!json::parse(body, local, json::Limits{options.max_body_bytes, options.max_depth}, &pe))
        return body_error(pe);
    return envelope_from(local.doc(), options.channel_optional);
}

Result<Envelope> decode(const kafka::Record& record, const DecodeOptions& options) {
    auto attrs = read_attribute_views(record);
    if (!attrs) return attrs.error();
    const bool inbound = attrs->type == event_type::message_inbound;
    if (!inbound && attrs->type != event_type::message_outbound)
        return Error{ErrorCode::bad_header, "header ce_type",
                     "not a message event: " + quoted(attrs->type) + " (expected " +
                         std::string(event_type::message_inbound) + " or " +
                         std::string(event_type::message_outbound) + ")"};

    auto env = decode_body(record.value, options);
    if (!env) return env;
    if ((env->direction == Direction::inbound) != inbound)
        return Error{ErrorCode::bad_header, "header ce_type",
                     quoted(attrs->type) + " does not match direction " + std::string(to_string(env->direction))};
    if (attrs->id != env->id)
        return Error{ErrorCode::bad_header, "header ce_id",
                     quoted(attrs->id) + " does not match body id " + quoted(env->id)};
    return env;
}

}  // namespace omnibus::envelope
