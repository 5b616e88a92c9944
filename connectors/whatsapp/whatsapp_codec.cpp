// WhatsApp Cloud API webhook bodies → envelopes and delivery statuses, in
// one pass over one RapidJSON document (see whatsapp_codec.h, README.md).
#include "connectors/whatsapp/whatsapp_codec.h"
#include "encoding/hex.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "connectors/whatsapp/whatsapp_graph.h"

namespace omnibus::connectors::whatsapp {
namespace {

using envelope::Attachment;
using envelope::AttachmentType;
using envelope::ContentType;
using envelope::Envelope;
using envelope::Error;
using envelope::ErrorCode;
using envelope::Participant;
using envelope::Timestamp;
using json::Value;

constexpr std::string_view kObject = "whatsapp_business_account";
// Hashed before the wamid, so message and status ids never collide.
constexpr std::string_view kMessageIdSpace = "whatsapp.message";
constexpr std::string_view kStatusIdSpace = "whatsapp.status";

// ---- small JSON readers (absent, wrong type and empty all read as "none") ----

// V is Value or const Value: the walk moves a few nodes out and back (see
// Walker::payload), everything else only reads.
template <class V>
V* member(V& obj, std::string_view key) {
    if (!obj.IsObject()) return nullptr;
    // Indexed, not iterator != end: clang warns that C++20 finds RapidJSON's
    // non-const iterator comparison ambiguous.
    const auto first = obj.MemberBegin();
    for (rapidjson::SizeType i = 0; i < obj.MemberCount(); ++i)
        if (json::view(first[i].name) == key) return &first[i].value;
    return nullptr;
}

std::optional<std::string_view> str(const Value& obj, std::string_view key) {
    const Value* v = member(obj, key);
    if (!v || !v->IsString() || v->GetStringLength() == 0) return std::nullopt;
    return json::view(*v);
}

std::optional<std::string> owned(std::optional<std::string_view> v) {
    if (!v) return std::nullopt;
    return std::string(*v);
}

template <class V>
V* array(V& obj, std::string_view key) {
    V* v = member(obj, key);
    return v && v->IsArray() ? v : nullptr;
}

template <class V>
V* object(V& obj, std::string_view key) {
    V* v = member(obj, key);
    return v && v->IsObject() ? v : nullptr;
}

// Unix seconds, as a string of digits (what Meta sends) or a number.
std::optional<Timestamp> unix_seconds(const Value& obj, std::string_view key) {
    const Value* v = member(obj, key);
    if (!v) return std::nullopt;
    std::int64_t s = 0;
    if (v->IsString()) {
        const std::string_view t = json::view(*v);
        if (t.empty() || t.size() > 11) return std::nullopt;  // up to year 5138
        for (const char c : t) {
            if (c < '0' || c > '9') return std::nullopt;
            s = s * 10 + (c - '0');
        }
    } else if (v->IsInt64()) {
        s = v->GetInt64();
        if (s < 0 || s > 99'999'999'999) return std::nullopt;
    } else {
        return std::nullopt;
    }
    if (s > 253'402'300'799) return std::nullopt;  // after 9999-12-31, RFC 3339 cannot say it
    return Timestamp(std::chrono::milliseconds(s * 1000));
}

// wa_ids and group ids are digits.
bool is_digits(std::string_view s, std::size_t max) {
    if (s.empty() || s.size() > max) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// BSUIDs: "US.13491208655302741918", "US.ENT.1181…" (country, '.', ≤128 alphanumerics).
bool is_bsuid(std::string_view s) {
    if (s.empty() || s.size() > 160) return false;
    for (const char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

bool has_control(std::string_view s) {
    for (const char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) return true;
    return false;
}

std::string identity(std::string_view scheme, std::string_view value) {
    std::string s;
    s.reserve(scheme.size() + 1 + value.size());
    s += scheme;
    s += ':';
    s += value;
    return s;
}

// Media sha256 comes as base64 (44 chars) in webhooks; the envelope wants hex.
std::optional<std::string> sha256_hex(std::string_view v) {
    if (v.size() == 64) {
        std::string out(v);
        for (char& c : out) {
            if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
        }
        return out;
    }
    if (v.size() != 44 || v[43] != '=' || v[42] == '=') return std::nullopt;
    auto sextet = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    std::array<unsigned char, 33> bytes{};
    std::size_t n = 0;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < 43; ++i) {
        const int s = sextet(v[i]);
        if (s < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(s);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes[n++] = static_cast<unsigned char>(acc >> bits);
        }
    }
    if (n != 32 || (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical trailing bits
    std::string out;
    out.reserve(64);
    for (std::size_t i = 0; i < 32; ++i) {
        out += encoding::kHexDigits[bytes[i] >> 4];
        out += encoding::kHexDigits[bytes[i] & 0x0F];
    }
    return out;
}

// ---- ids -------------------------------------------------------------------------

std::string uuid7_from(const EVP_MD* md, Timestamp at, std::string_view a, std::string_view b, std::string_view c) {
    unsigned char h[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    bool ok = false;
    if (EVP_MD_CTX* ctx = EVP_MD_CTX_new()) {
        // Fields separated by NUL, which none of them can contain meaningfully.
        static constexpr char kSep = '\0';
        ok = EVP_DigestInit_ex2(ctx, md, nullptr) == 1 && EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
             EVP_DigestUpdate(ctx, &kSep, 1) == 1 && EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
             EVP_DigestUpdate(ctx, &kSep, 1) == 1 && EVP_DigestUpdate(ctx, c.data(), c.size()) == 1 &&
             EVP_DigestFinal_ex(ctx, h, &len) == 1;
        EVP_MD_CTX_free(ctx);
    }
    if (!ok) throw std::bad_alloc();  // OpenSSL fails here only when out of memory

    std::int64_t ms = at.time_since_epoch().count();
    if (ms < 0) ms = 0;
    const auto t = static_cast<std::uint64_t>(ms) & 0xFFFFFFFFFFFFULL;
    unsigned char b16[16];
    for (int i = 0; i < 6; ++i) b16[i] = static_cast<unsigned char>(t >> (40 - 8 * i));
    b16[6] = static_cast<unsigned char>(0x70 | (h[0] & 0x0F));  // version 7
    b16[7] = h[1];
    b16[8] = static_cast<unsigned char>(0x80 | (h[2] & 0x3F));  // RFC 9562 variant
    for (int i = 9; i < 16; ++i) b16[i] = h[i - 6];

    std::string out;
    out.reserve(envelope::kIdLength);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += encoding::kHexDigits[b16[i] >> 4];
        out += encoding::kHexDigits[b16[i] & 0x0F];
    }
    return out;
}

// ---- where in the body: built only when something is reported ------------------

struct Where {
    std::size_t entry = 0;
    std::size_t change = 0;
    std::string_view list;  // "messages" / "statuses"; "" above that level
    std::size_t item = 0;

    // "entry[0].changes[1]", "entry[0].changes[1].value.messages"
    std::string base() const {
        std::string p = "entry[" + std::to_string(entry) + "].changes[" + std::to_string(change) + "]";
        if (!list.empty()) {
            p += ".value.";
            p += list;
        }
        return p;
    }
    // "entry[0].changes[1].value.messages[2].leaf"
    std::string path(std::string_view leaf = {}) const {
        std::string p = base();
        if (!list.empty()) p += '[' + std::to_string(item) + ']';
        if (!leaf.empty()) {
            p += '.';
            p += leaf;
        }
        return p;
    }
};

// ---- the walk -------------------------------------------------------------------

class Walker {
public:
    Walker(const CodecOptions& options, const phone::PhoneNormalizer& phones, const EVP_MD* sha256, Timestamp received_at,
           WebhookEvents& out)
        : options_(options), phones_(phones), sha256_(sha256), received_at_(received_at), out_(out) {}

    void entry(Value& e, std::size_t index) {
        auto path = [index](std::string_view leaf) {
            return "entry[" + std::to_string(index) + "]" + std::string(leaf);
        };
        if (!e.IsObject())
            return reject(ErrorCode::wrong_type, path(""), "expected an object, got " + std::string(json::type_name(e)),
                          e);
        const std::string_view waba = str(e, "id").value_or("");
        Value* changes = member(e, "changes");
        if (!changes) return reject(ErrorCode::missing_field, path(".changes"), "absent", e);
        if (!changes->IsArray())
            return reject(ErrorCode::wrong_type, path(".changes"),
                          "expected an array, got " + std::string(json::type_name(*changes)), e);
        Where at{index, 0, {}, 0};
        for (rapidjson::SizeType i = 0; i < changes->Size(); ++i) {
            at.change = i;
            change((*changes)[i], waba, at);
        }
    }

private:
    void reject(ErrorCode code, std::string field, std::string message, const Value& raw) {
        out_.rejected.push_back(
            Rejected{Error{code, std::move(field), std::move(message)}, json::RawJson::from_value(raw)});
    }

    void change(Value& c, std::string_view waba, const Where& at) {
        if (!c.IsObject())
            return reject(ErrorCode::wrong_type, at.path(),
                          "expected an object, got " + std::string(json::type_name(c)), c);
        const std::optional<std::string_view> field = str(c, "field");
        Value* value = member(c, "value");
        if (!field) return reject(ErrorCode::missing_field, at.path("field"), "absent, empty or not a string", c);
        if (!value) return reject(ErrorCode::missing_field, at.path("value"), "absent", c);
        if (*field != "messages") {
            out_.other.push_back(
                OtherChange{std::string(*field), std::string(waba), json::RawJson::from_value(*value)});
            return;
        }
        if (!value->IsObject())
            return reject(ErrorCode::wrong_type, at.path("value"),
                          "expected an object, got " + std::string(json::type_name(*value)), c);
        messages_value(*value, waba, at);
    }

    void messages_value(Value& v, std::string_view waba, Where at) {
        product_ = member(v, "messaging_product");
        metadata_ = object(v, "metadata");
        contacts_ = array(v, "contacts");
        business_.reset();
        if (metadata_) {
            if (const auto id = str(*metadata_, "phone_number_id")) {
                Participant b;
                b.id = identity(kBusinessScheme, *id);
                if (const auto display = str(*metadata_, "display_phone_number")) {
                    std::string digits;  // "+1 555-078-3881" or "15550783881"
                    for (const char ch : *display)
                        if (ch >= '0' && ch <= '9') digits += ch;
                    if (auto e164 = phones_.from_wa_id(digits)) b.identities.push_back(identity("phone", *e164));
                }
                business_ = std::move(b);
            }
        }

        if (Value* messages = member(v, "messages")) {
            at.list = "messages";
            if (!messages->IsArray()) {
                reject(ErrorCode::wrong_type, at.base(), "expected an array", *messages);
            } else {
                for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
                    at.item = i;
                    message((*messages)[i], at);
                }
            }
        }
        if (const Value* statuses = member(std::as_const(v), "statuses")) {
            at.list = "statuses";
            if (!statuses->IsArray()) {
                reject(ErrorCode::wrong_type, at.base(), "expected an array", *statuses);
            } else {
                for (rapidjson::SizeType i = 0; i < statuses->Size(); ++i) {
                    at.item = i;
                    status((*statuses)[i], at);
                }
            }
        }
        if (const Value* errors = member(std::as_const(v), "errors"))
            out_.other.push_back(OtherChange{"messages.errors", std::string(waba), json::RawJson::from_value(*errors)});
    }

    // The contact the message is from: same wa_id / BSUID, else the only one.
    Value* contact_for(std::optional<std::string_view> from, std::optional<std::string_view> user_id) const {
        if (!contacts_) return nullptr;
        for (Value& c : contacts_->GetArray()) {
            if (from && str(c, "wa_id") == from) return &c;
            if (user_id && str(c, "user_id") == user_id) return &c;
        }
        return contacts_->Size() == 1 && (*contacts_)[0].IsObject() ? &(*contacts_)[0] : nullptr;
    }

    void message(Value& m, const Where& at) {
        if (!m.IsObject())
            return reject(ErrorCode::wrong_type, at.path(),
                          "expected an object, got " + std::string(json::type_name(m)), m);
        const std::optional<std::string_view> wamid = str(m, "id");
        if (!wamid) return reject(ErrorCode::missing_field, at.path("id"), "absent, empty or not a string", m);
        if (wamid->size() > 512 || has_control(*wamid))
            return reject(ErrorCode::bad_value, at.path("id"), "not a message id: \"" + json::excerpt(*wamid) + "\"",
                          m);

        std::optional<std::string_view> from = str(m, "from");
        std::optional<std::string_view> from_user = str(m, "from_user_id");
        Value* contact = contact_for(from, from_user);
        if (!from_user && contact) from_user = str(*contact, "user_id");
        if (from && !is_digits(*from, 32))
            return reject(ErrorCode::bad_value, at.path("from"), "not a WhatsApp id: \"" + json::excerpt(*from) + "\"",
                          m);
        if (from_user && !is_bsuid(*from_user)) from_user.reset();
        if (!from && !from_user)
            return reject(ErrorCode::missing_field, at.path("from"), "no sender (neither from nor from_user_id)", m);

        Envelope env;
        env.channel.type = kChannelType;
        env.channel.name = options_.channel_name;
        env.direction = envelope::Direction::inbound;
        env.received_at = received_at_;
        env.recipient = business_;

        // Sender.
        Participant& s = env.sender;
        if (from) {
            s.id = identity(kUserScheme, *from);
            if (auto e164 = phones_.from_wa_id(*from)) {
                s.identities.push_back(identity("phone", *e164));
                s.verified_claims = envelope::VerifiedClaims{};
                s.verified_claims->phone = std::move(*e164);  // WhatsApp verified the number at registration
            }
            if (from_user) s.identities.push_back(identity(kBsuidScheme, *from_user));
        } else {
            s.id = identity(kBsuidScheme, *from_user);
        }
        std::optional<std::string_view> parent = str(m, "from_parent_user_id");
        if (!parent && contact) parent = str(*contact, "parent_user_id");
        if (parent && is_bsuid(*parent) && parent != from_user) s.identities.push_back(identity(kBsuidScheme, *parent));
        if (contact) {
            const Value* profile = object(*contact, "profile");
            std::optional<std::string_view> name = profile ? str(*profile, "name") : std::nullopt;
            if (!name && profile) name = str(*profile, "username");
            if (!name) name = str(*contact, "username");
            if (name) s.display_name = std::string(*name);
        }

        // Platform.
        const std::optional<Timestamp> ts = unix_seconds(m, "timestamp");
        env.platform.emplace();
        env.platform->message_id = std::string(*wamid);
        env.platform->timestamp = ts;
        env.id = uuid7_from(sha256_, ts.value_or(received_at_), kMessageIdSpace, *wamid, {});

        if (const Value* ctx = object(std::as_const(m), "context")) env.content.reply_to = owned(str(*ctx, "id"));
        std::optional<Error> problem = content(m, env.content, at);
        if (problem) {
            env.content = envelope::Content{};
            env.content.type = ContentType::unsupported;
            if (const Value* ctx = object(std::as_const(m), "context")) env.content.reply_to = owned(str(*ctx, "id"));
            out_.degraded.push_back(Degraded{out_.messages.size(), std::move(*problem)});
        }
        // Last: it moves nodes (wamid, from, … point into them) out and back.
        env.platform->payload = payload(m, contact);
        out_.messages.push_back(std::move(env));
    }

    // `value` narrowed to this one message: the Cloud API's own shape, so the
    // payload reads like a single-message webhook. RapidJSON assignment moves,
    // so the nodes are moved into a temporary object, written out, and moved
    // back: O(1) per node where a deep copy would allocate.
    json::RawJson payload(Value& m, Value* contact) const {
        char buf[1024];  // room for the members and arrays below, no malloc
        rapidjson::MemoryPoolAllocator<> alloc(buf, sizeof buf);
        Value v(rapidjson::kObjectType);
        Value contacts(rapidjson::kArrayType);
        Value messages(rapidjson::kArrayType);
        if (product_) v.AddMember("messaging_product", *product_, alloc);
        if (metadata_) v.AddMember("metadata", *metadata_, alloc);
        if (contact) {
            contacts.PushBack(*contact, alloc);
            v.AddMember("contacts", contacts, alloc);
        }
        messages.PushBack(m, alloc);
        v.AddMember("messages", messages, alloc);

        json::RawJson out = json::RawJson::from_value(v);

        auto back = v.MemberBegin();
        if (product_) *product_ = (back++)->value;
        if (metadata_) *metadata_ = (back++)->value;
        if (contact) *contact = (back++)->value[0];
        m = back->value[0];
        return out;
    }

    // Fills `c` from the message; an Error when the content is malformed.
    std::optional<Error> content(const Value& m, envelope::Content& c, const Where& at) const {
        const std::optional<std::string_view> type = str(m, "type");
        if (!type) return Error{ErrorCode::missing_field, at.path("type"), "absent, empty or not a string"};
        const std::string_view t = *type;
        auto body_of = [&](const char* key) -> const Value* { return object(m, key); };
        auto missing = [&](std::string_view leaf) {
            return Error{ErrorCode::missing_field, at.path(leaf), "absent or of the wrong type"};
        };

        if (t == "text") {
            const Value* text = body_of("text");
            const auto b = text ? str(*text, "body") : std::nullopt;
            if (!b) return missing("text.body");
            c.type = ContentType::text;
            c.text = std::string(*b);
            return std::nullopt;
        }
        if (t == "image" || t == "audio" || t == "video" || t == "document" || t == "sticker") {
            const Value* media = member(m, t);
            const auto id = media ? str(*media, "id") : std::nullopt;
            if (!id) return missing(std::string(t) + ".id");
            Attachment a;
            a.type = envelope::parse_attachment_type(t);
            a.media_id = std::string(*id);
            a.url = owned(str(*media, "url"));
            a.mime_type = owned(str(*media, "mime_type"));
            if (const auto sha = str(*media, "sha256")) a.sha256 = sha256_hex(*sha);
            a.caption = owned(str(*media, "caption"));
            a.filename = owned(str(*media, "filename"));
            c.type = envelope::parse_content_type(t);
            c.text = a.caption;
            c.attachments.push_back(std::move(a));
            return std::nullopt;
        }
        if (t == "location") {
            const Value* loc = body_of("location");
            const Value* lat = loc ? member(*loc, "latitude") : nullptr;
            const Value* lon = loc ? member(*loc, "longitude") : nullptr;
            if (!lat || !lon || !lat->IsNumber() || !lon->IsNumber()) return missing("location.latitude/longitude");
            const double la = lat->GetDouble(), lo = lon->GetDouble();
            if (!std::isfinite(la) || !std::isfinite(lo) || la < -90 || la > 90 || lo < -180 || lo > 180)
                return Error{ErrorCode::bad_value, at.path("location"), "coordinates out of range"};
            c.type = ContentType::location;
            c.location = envelope::Location{la, lo, owned(str(*loc, "name")), owned(str(*loc, "address"))};
            return std::nullopt;
        }
        if (t == "contacts") {
            const Value* cards = array(m, "contacts");
            if (!cards || cards->Empty()) return missing("contacts");
            c.type = ContentType::contacts;
            c.text = contacts_summary(*cards);
            if (c.text->empty()) c.text.reset();
            return std::nullopt;
        }
        if (t == "interactive") {
            const Value* in = body_of("interactive");
            if (!in) return missing("interactive");
            c.type = ContentType::interactive;
            const std::string_view kind = str(*in, "type").value_or("");
            if (const Value* reply = object(*in, kind)) {
                // button_reply / list_reply: the title the customer tapped;
                // nfm_reply (Flows): the body, the answers are in the payload.
                c.text = owned(kind == "nfm_reply" ? str(*reply, "body") : str(*reply, "title"));
            }
            return std::nullopt;
        }
        if (t == "button") {
            const Value* b = body_of("button");
            if (!b) return missing("button");
            c.type = ContentType::button;
            c.text = owned(str(*b, "text"));
            if (!c.text) c.text = owned(str(*b, "payload"));
            return std::nullopt;
        }
        if (t == "reaction") {
            const Value* r = body_of("reaction");
            const auto target = r ? str(*r, "message_id") : std::nullopt;
            if (!target) return missing("reaction.message_id");
            c.type = ContentType::reaction;
            c.reply_to = std::string(*target);
            c.text = owned(str(*r, "emoji"));  // absent: the reaction was removed
            return std::nullopt;
        }
        if (t == "order") {
            const Value* o = body_of("order");
            if (!o) return missing("order");
            c.type = ContentType::order;
            c.text = owned(str(*o, "text"));
            return std::nullopt;
        }
        if (t == "system") {
            const Value* sys = body_of("system");
            if (!sys) return missing("system");
            c.type = ContentType::system;
            c.text = owned(str(*sys, "body"));
            return std::nullopt;
        }
        if (t == "request_welcome") {  // the customer opened the chat for the first time
            c.type = ContentType::system;
            return std::nullopt;
        }
        if (t == "unsupported" || t == "unknown") {  // WhatsApp's own: the app sent what the API cannot carry
            c.type = ContentType::unsupported;
            return std::nullopt;
        }
        return Error{ErrorCode::bad_value, at.path("type"), "unknown message type \"" + json::excerpt(t) + "\""};
    }

    // "Barbara J. Johnson: +16505551234, +19405551234" per card, one per line.
    // A written number costs libphonenumber ~25 µs: only the first few are
    // normalised, the rest are shown as written (a card can hold hundreds).
    std::string contacts_summary(const Value& cards) const {
        static constexpr int kMaxNormalised = 16;
        int budget = kMaxNormalised;
        std::string text;
        for (const Value& card : cards.GetArray()) {
            if (!card.IsObject()) continue;
            std::string line;
            if (const Value* name = object(card, "name")) {
                if (const auto f = str(*name, "formatted_name")) line = *f;
            }
            bool first = true;
            if (const Value* phones = array(card, "phones")) {
                for (const Value& p : phones->GetArray()) {
                    std::optional<std::string> number;
                    if (const auto wa = p.IsObject() ? str(p, "wa_id") : std::nullopt) number = phones_.from_wa_id(*wa);
                    const auto written = p.IsObject() ? str(p, "phone") : std::nullopt;
                    if (!number && written && budget-- > 0) number = phones_.from_text(*written);
                    if (!number && written) number = std::string(*written);
                    if (!number) continue;
                    line += first ? (line.empty() ? "" : ": ") : ", ";
                    line += *number;
                    first = false;
                }
            }
            if (line.empty()) continue;
            if (!text.empty()) text += '\n';
            text += line;
        }
        return text;
    }

    void status(const Value& st, const Where& at) {
        if (!st.IsObject())
            return reject(ErrorCode::wrong_type, at.path(),
                          "expected an object, got " + std::string(json::type_name(st)), st);
        const auto wamid = str(st, "id");
        if (!wamid) return reject(ErrorCode::missing_field, at.path("id"), "absent, empty or not a string", st);
        const auto word = str(st, "status");
        if (!word) return reject(ErrorCode::missing_field, at.path("status"), "absent, empty or not a string", st);
        if (wamid->size() > 512 || has_control(*wamid))
            return reject(ErrorCode::bad_value, at.path("id"), "not a message id: \"" + json::excerpt(*wamid) + "\"",
                          st);
        if (word->size() > 64 || has_control(*word))
            return reject(ErrorCode::bad_value, at.path("status"), "not a status: \"" + json::excerpt(*word) + "\"",
                          st);

        DeliveryStatus d;
        d.channel.type = kChannelType;
        d.channel.name = options_.channel_name;
        d.message_id = std::string(*wamid);
        d.status = std::string(*word);
        d.timestamp = unix_seconds(st, "timestamp");
        d.received_at = received_at_;
        d.id = uuid7_from(sha256_, d.timestamp.value_or(received_at_), kStatusIdSpace, *wamid, *word);

        const auto rid = str(st, "recipient_id");
        const auto ruser = str(st, "recipient_user_id");
        const bool group = str(st, "recipient_type") == "group";
        Participant r;
        if (rid && is_digits(*rid, 64)) r.id = identity(group ? kGroupScheme : kUserScheme, *rid);
        if (ruser && is_bsuid(*ruser)) {
            if (r.id.empty())
                r.id = identity(kBsuidScheme, *ruser);
            else
                r.identities.push_back(identity(kBsuidScheme, *ruser));
        }
        if (!r.id.empty()) d.recipient = std::move(r);

        if (const Value* errors = array(st, "errors")) {
            for (const Value& e : errors->GetArray()) {
                if (!e.IsObject()) continue;
                DeliveryError de;
                const Value* code = member(e, "code");
                const bool has_code = code && code->IsInt64();
                if (has_code) de.code = code->GetInt64();
                de.title = owned(str(e, "title"));
                de.message = owned(str(e, "message"));
                if (const Value* data = object(e, "error_data")) de.details = owned(str(*data, "details"));
                de.href = owned(str(e, "href"));
                de.retryable = has_code && is_retryable(classify(0, de.code));
                d.errors.push_back(std::move(de));
            }
        }
        if (const Value* conv = object(st, "conversation")) {
            DeliveryConversation dc;
            dc.id = owned(str(*conv, "id"));
            if (const Value* origin = object(*conv, "origin")) dc.origin = owned(str(*origin, "type"));
            dc.expires_at = unix_seconds(*conv, "expiration_timestamp");
            d.conversation = std::move(dc);
        }
        if (const Value* pricing = object(st, "pricing")) {
            DeliveryPricing dp;
            if (const Value* b = member(*pricing, "billable"); b && b->IsBool()) dp.billable = b->GetBool();
            dp.model = owned(str(*pricing, "pricing_model"));
            dp.category = owned(str(*pricing, "category"));
            dp.type = owned(str(*pricing, "type"));
            d.pricing = std::move(dp);
        }
        d.callback_data = owned(str(st, "biz_opaque_callback_data"));
        d.payload = json::RawJson::from_value(st);
        out_.statuses.push_back(std::move(d));
    }

    const CodecOptions& options_;
    const phone::PhoneNormalizer& phones_;
    const EVP_MD* sha256_;
    Timestamp received_at_;
    WebhookEvents& out_;
    // What the messages of the `value` being walked share.
    Value* product_ = nullptr;
    Value* metadata_ = nullptr;
    Value* contacts_ = nullptr;
    std::optional<Participant> business_;
};

bool is_channel_name(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    return true;
}

bool is_challenge(std::string_view s) {
    if (s.empty() || s.size() > 128) return false;
    for (const char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '~'))
            return false;
    return true;
}

}  // namespace

std::string message_event_id(std::string_view wamid, Timestamp at) {
    return uuid7_from(EVP_sha256(), at, kMessageIdSpace, wamid, {});
}

std::string status_event_id(std::string_view wamid, std::string_view status, Timestamp at) {
    return uuid7_from(EVP_sha256(), at, kStatusIdSpace, wamid, status);
}

void WebhookCodec::MdFree::operator()(EVP_MD* md) const { EVP_MD_free(md); }

WebhookCodec::WebhookCodec(CodecOptions options)
    : options_(std::move(options)),
      phones_(options_.default_region),
      sha256_(EVP_MD_fetch(nullptr, "SHA256", nullptr)) {
    if (!is_channel_name(options_.channel_name))
        throw std::invalid_argument("whatsapp codec: not a channel name: \"" + options_.channel_name + "\"");
    if (!sha256_) throw std::runtime_error("whatsapp codec: OpenSSL has no SHA-256");
}

WebhookCodec::~WebhookCodec() = default;

Result<WebhookEvents> WebhookCodec::parse(std::string_view body, Timestamp received_at) const {
    json::LocalDocument<16384> doc;
    json::ParseError pe;
    if (!json::parse(body, doc, json::Limits{options_.max_body_bytes, options_.max_depth}, &pe))
        return envelope::body_error(pe);
    Value& root = doc.doc();
    if (!root.IsObject())
        return Error{ErrorCode::wrong_type, "body", "expected an object, got " + std::string(json::type_name(root))};
    const Value* object_field = member(root, "object");
    if (!object_field || !object_field->IsString())
        return Error{ErrorCode::missing_field, "object", "absent or not a string"};
    if (json::view(*object_field) != kObject)
        return Error{
            ErrorCode::bad_value, "object",
            "expected \"" + std::string(kObject) + "\", got \"" + json::excerpt(json::view(*object_field)) + "\""};
    Value* entries = member(root, "entry");
    if (!entries) return Error{ErrorCode::missing_field, "entry", "absent"};
    if (!entries->IsArray())
        return Error{ErrorCode::wrong_type, "entry",
                     "expected an array, got " + std::string(json::type_name(*entries))};

    WebhookEvents out;
    Walker walker(options_, phones_, sha256_.get(), received_at, out);
    for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) walker.entry((*entries)[i], i);
    return out;
}

HandshakeReply verify_subscription(std::string_view mode, std::string_view verify_token, std::string_view challenge,
                                   std::string_view configured_token) {
    // Compare in constant time for tokens of the same length; the length
    // itself is not secret enough to hide (and an empty token never matches).
    const bool token_ok = !configured_token.empty() && verify_token.size() == configured_token.size() &&
                          CRYPTO_memcmp(verify_token.data(), configured_token.data(), configured_token.size()) == 0;
    if (mode != "subscribe" || !token_ok || !is_challenge(challenge)) return HandshakeReply{403, {}};
    return HandshakeReply{200, std::string(challenge)};
}

}  // namespace omnibus::connectors::whatsapp
