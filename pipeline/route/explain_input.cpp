// Reading an explain request (explain_input.h).
#include "pipeline/route/explain_input.h"

#include "envelope/json.h"

namespace omnibus::pipeline::route {

namespace {

using envelope::Error;
using envelope::ErrorCode;

Error bad(std::string field, std::string message, ErrorCode code = ErrorCode::bad_value) {
    return Error{code, std::move(field), std::move(message)};
}

std::optional<std::string_view> string_member(const json::Value& obj, const char* name) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd() || !it->value.IsString()) return std::nullopt;
    return json::view(it->value);
}

std::optional<Error> read_time(const json::Value& obj, const char* name, const std::string& field, Timestamp& out) {
    auto it = obj.FindMember(name);
    if (it == obj.MemberEnd()) return std::nullopt;
    if (!it->value.IsString()) return bad(field, "expected an RFC 3339 time", ErrorCode::wrong_type);
    auto t = envelope::parse_rfc3339(json::view(it->value));
    if (!t) return bad(field, "expected an RFC 3339 time");
    out = *t;
    return std::nullopt;
}

std::optional<Error> read_handoff(const json::Value& h, HandoffState& s) {
    if (!h.IsObject()) return bad("context.handoff", "expected an object", ErrorCode::wrong_type);
    for (auto m = h.MemberBegin(); m != h.MemberEnd(); ++m) {
        const std::string key(json::view(m->name));
        const std::string field = "context.handoff." + key;
        if (key == "owner") {
            auto v = string_member(h, "owner");
            if (v == "ai") s.owner = Owner::ai;
            else if (v == "human") s.owner = Owner::human;
            else return bad(field, "expected \"ai\" or \"human\"");
        } else if (key == "reason") {
            auto v = string_member(h, "reason");
            bool found = false;
            for (auto r : {HandoffReason::none, HandoffReason::human_reply, HandoffReason::taken_over,
                           HandoffReason::cannot_help, HandoffReason::released, HandoffReason::idle,
                           HandoffReason::new_conversation}) {
                if (v == to_string(r)) {
                    s.reason = r;
                    found = true;
                }
            }
            if (!found) return bad(field, "expected none, human_reply, taken_over, cannot_help, released or idle");
        } else if (key == "agent") {
            auto v = string_member(h, "agent");
            if (!v) return bad(field, "expected a string", ErrorCode::wrong_type);
            s.agent = std::string(*v);
        } else if (key == "since" || key == "last_human_action") {
            if (auto e = read_time(h, key == "since" ? "since" : "last_human_action", field,
                                   key == "since" ? s.since : s.last_human_action))
                return e;
        } else if (key == "ai_turns") {
            if (!m->value.IsUint()) return bad(field, "expected a non-negative integer", ErrorCode::wrong_type);
            s.ai_turns = m->value.GetUint();
        } else {
            return bad(field, "unknown field");
        }
    }
    // An owner given without a reason gets the one that fits it.
    if (s.owner == Owner::human && s.reason == HandoffReason::none) s.reason = HandoffReason::taken_over;
    return std::nullopt;
}

}  // namespace

envelope::Result<ExplainInput> parse_explain_input(std::string_view text, std::chrono::system_clock::time_point now) {
    json::LocalDocument<> doc;
    json::ParseError pe;
    if (!json::parse(text, doc, json::Limits{}, &pe)) return envelope::body_error(pe);
    const json::Value& root = doc.doc();
    if (!root.IsObject()) return bad("body", "expected an object", ErrorCode::wrong_type);

    ExplainInput in;
    in.context.now = now;
    const auto env_it = root.FindMember("envelope");
    const json::Value* ctx = nullptr;
    std::string env_text;
    if (env_it != root.MemberEnd()) {
        for (auto m = root.MemberBegin(); m != root.MemberEnd(); ++m) {
            const std::string_view key = json::view(m->name);
            if (key == "context") ctx = &m->value;
            else if (key != "envelope") return bad(std::string(key), "unknown field (expected envelope and context)");
        }
        rapidjson::StringBuffer buf;
        json::Writer w(buf);
        env_it->value.Accept(w);
        env_text.assign(buf.GetString(), buf.GetSize());
    } else {
        env_text.assign(text);
    }
    auto env = envelope::decode_body(env_text);
    if (!env) {
        Error e = env.error();
        if (env_it != root.MemberEnd()) e.field = "envelope." + e.field;
        return e;
    }
    in.envelope = std::move(env).value();
    if (!ctx) return in;
    if (!ctx->IsObject()) return bad("context", "expected an object", ErrorCode::wrong_type);

    for (auto m = ctx->MemberBegin(); m != ctx->MemberEnd(); ++m) {
        const std::string key(json::view(m->name));
        const std::string field = "context." + key;
        const json::Value& v = m->value;
        if (key == "customer") {
            if (!v.IsObject()) return bad(field, "expected an object of strings", ErrorCode::wrong_type);
            in.customer = std::make_unique<CustomerAttributes>();
            for (auto a = v.MemberBegin(); a != v.MemberEnd(); ++a) {
                if (!a->value.IsString()) {
                    return bad(field + "." + std::string(json::view(a->name)), "expected a string", ErrorCode::wrong_type);
                }
                (*in.customer)[std::string(json::view(a->name))] = std::string(json::view(a->value));
            }
            in.context.customer = in.customer.get();
        } else if (key == "conversation") {
            const auto s = v.IsString() ? json::view(v) : std::string_view();
            if (s == "new") in.context.conversation = ConversationState::new_;
            else if (s == "open") in.context.conversation = ConversationState::open;
            else if (s == "reopened") in.context.conversation = ConversationState::reopened;
            else return bad(field, "expected \"new\", \"open\" or \"reopened\"");
        } else if (key == "handoff") {
            in.handoff = std::make_unique<HandoffState>();
            if (auto e = read_handoff(v, *in.handoff)) return *e;
            in.context.handoff = in.handoff.get();
        } else if (key == "now") {
            Timestamp t{};
            if (auto e = read_time(*ctx, "now", field, t)) return *e;
            in.context.now = std::chrono::system_clock::time_point(t.time_since_epoch());
        } else if (key == "customer_time_zone") {
            auto tz = v.IsString() ? load_time_zone(json::view(v)) : std::nullopt;
            if (!tz) return bad(field, "expected an IANA time zone name such as \"Asia/Tokyo\"");
            in.context.customer_time_zone = tz;
        } else {
            return bad(field, "unknown field");
        }
    }
    return in;
}

}  // namespace omnibus::pipeline::route
