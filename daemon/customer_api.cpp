// The admin API's customer and identity routes (see customer_api.h).
#include "daemon/customer_api.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "envelope/id.h"
#include "envelope/json.h"
#include "envelope/timestamp.h"
#include "log/log.h"
#include "pipeline/history/conversation_stage.h"
#include "pipeline/identity/identity_service.h"
#include "pipeline/route/router.h"

namespace omnibus::daemon {
namespace {

namespace id = pipeline::identity;

constexpr log::Logger lg{"admin"};

// Identities may hold '/', so the identity is the rest of the path; customer ids never do.
constexpr const char* kIdentityRoute = R"(/v1/identities/(.+))";
constexpr const char* kCustomerRoute = R"(/v1/customers/([^/]+))";
constexpr const char* kCustomerIdentitiesRoute = R"(/v1/customers/([^/]+)/identities)";
constexpr const char* kCustomerAttributesRoute = R"(/v1/customers/([^/]+)/attributes)";
constexpr const char* kCustomerIdentityRoute = R"(/v1/customers/([^/]+)/identities/(.+))";
constexpr const char* kCustomerMessagesRoute = R"(/v1/customers/([^/]+)/messages)";

namespace hist = pipeline::history;

std::string rfc3339_ms(std::int64_t ms) { return envelope::format_rfc3339(envelope::Timestamp(std::chrono::milliseconds(ms))); }

void write_conversations(json::Writer& w, const std::vector<hist::ConversationSummary>& convs) {
    json::write_key(w, "conversations");
    w.StartArray();
    for (const auto& c : convs) {
        w.StartObject();
        json::write_key(w, "id");
        json::write_string(w, c.id);
        json::write_key(w, "started_at");
        json::write_string(w, rfc3339_ms(c.started_ms));
        json::write_key(w, "last_message_at");
        json::write_string(w, rfc3339_ms(c.last_ms));
        json::write_key(w, "messages");
        w.Uint64(c.messages);
        json::write_key(w, "channels");
        w.StartArray();
        for (const auto& ch : c.channels) json::write_string(w, ch);
        w.EndArray();
        w.EndObject();
    }
    w.EndArray();
}

void write_entry(json::Writer& w, const hist::HistoryEntry& e) {
    w.StartObject();
    json::write_key(w, "id");
    json::write_string(w, e.id);
    json::write_key(w, "at");
    json::write_string(w, rfc3339_ms(e.at_ms));
    json::write_key(w, "direction");
    json::write_string(w, envelope::to_string(e.direction));
    json::write_key(w, "channel");
    w.StartObject();
    json::write_key(w, "type");
    json::write_string(w, e.channel_type);
    json::write_key(w, "name");
    json::write_string(w, e.channel_name);
    w.EndObject();
    json::write_key(w, "conversation_id");
    json::write_string(w, e.conversation);
    json::write_key(w, "author");
    json::write_string(w, e.author);
    json::write_key(w, "sender");
    json::write_string(w, e.sender);
    json::write_key(w, "content");
    w.StartObject();
    json::write_key(w, "type");
    json::write_string(w, e.content_type);
    if (e.subject) {
        json::write_key(w, "subject");
        json::write_string(w, *e.subject);
    }
    if (e.text) {
        json::write_key(w, "text");
        json::write_string(w, *e.text);
    }
    json::write_key(w, "attachments");
    w.Uint(e.attachments);
    w.EndObject();
    if (!e.platform_message_id.empty()) {
        json::write_key(w, "platform_message_id");
        json::write_string(w, e.platform_message_id);
    }
    w.EndObject();
}

std::string finish(rapidjson::StringBuffer& buf) { return std::string(buf.GetString(), buf.GetSize()) + "\n"; }

AdminResponse answer(int status, std::string body) { return AdminResponse{status, "application/json", std::move(body)}; }

AdminResponse error(int status, std::string_view message) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "error");
    json::write_string(w, message);
    w.EndObject();
    return answer(status, finish(buf));
}

AdminResponse not_ready() { return error(503, "identity not ready"); }
AdminResponse unknown_customer() { return error(404, "unknown customer"); }

// 421: the history is on another instance's partition and no answer could be had from it.
AdminResponse held_elsewhere(int partition, std::string_view reason) {
    std::string_view why = "this customer's history is held by another instance, which did not answer";
    if (reason == "forwarded")
        why = "this customer's history is held by another instance; a forwarded request is not forwarded again";
    else if (reason == "holder_unknown")
        why = "this customer's history is held by another instance, and no instance is known to hold it";
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "error");
    json::write_string(w, why);
    json::write_key(w, "partition");
    w.Int(partition);
    json::write_key(w, "reason");
    json::write_string(w, reason);
    w.EndObject();
    return answer(421, finish(buf));
}

// A path segment: everything but RFC 3986's unreserved characters percent-encoded.
std::string path_segment(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

void write_strings(json::Writer& w, std::string_view key, const std::vector<std::string>& v) {
    json::write_key(w, key);
    w.StartArray();
    for (const auto& s : v) json::write_string(w, s);
    w.EndArray();
}

// The members of a customer's profile (the survivor; an alias is never shown as itself).
void write_profile(json::Writer& w, const id::Customer& c) {
    json::write_key(w, "customer_id");
    json::write_string(w, c.id);
    json::write_key(w, "created_at");
    json::write_string(w, envelope::format_rfc3339(envelope::Timestamp(std::chrono::milliseconds(c.created_ms))));
    write_strings(w, "identities", c.identities);
    write_strings(w, "aliases", c.aliases);
    json::write_key(w, "attributes");
    w.StartObject();
    for (const auto& [name, value] : c.attributes) {
        json::write_key(w, name);
        json::write_string(w, value);
    }
    w.EndObject();
}

// Customer ids in paths: what a request on the log accepts (identity.h's decode_request).
bool plausible_customer_id(std::string_view s) {
    return !s.empty() && s.size() <= 64 && json::is_valid_utf8(s) &&
           std::none_of(s.begin(), s.end(), [](char c) {
               auto u = static_cast<unsigned char>(c);
               return u <= 0x20 || u == 0x7F;
           });
}

// "+" then 1 to 15 digits, the first not 0 (ITU-T E.164).
bool is_e164(std::string_view v) {
    return v.size() >= 2 && v.size() <= 16 && v[0] == '+' && v[1] != '0' &&
           std::all_of(v.begin() + 1, v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The identity to link, in the form the pipeline writes: emails normalized with the configured
// rules, phones already E.164. The error is a message for the caller.
envelope::Result<std::string> identity_to_link(std::string_view raw, const id::EmailRules& rules) {
    if (auto st = id::check_identity(raw); !st) return st.error();
    const std::string_view kind = id::kind_of(raw);
    const std::string_view value = raw.substr(kind.size() + 1);
    if (kind == "email") {
        auto normalized = id::normalize_email(value, rules);
        if (!normalized)
            return envelope::Error{envelope::ErrorCode::bad_value, "identity", "not one email address"};
        return "email:" + *normalized;
    }
    if (kind == "phone" && !is_e164(value))
        return envelope::Error{envelope::ErrorCode::bad_value, "identity",
                               "a phone identity is phone:+<E.164 digits>, e.g. phone:+4930123456"};
    return std::string(raw);
}

// What a submitted request came to: nothing when there is no service or it did not answer in time.
struct Submitted {
    bool had_service = false;
    std::optional<id::Outcome> outcome;
};

// Submits `r` and waits (on this admin thread, bounded) for its outcome. The service is held
// only for the submit, so shutdown never waits for a handler's wait.
Submitted submit_and_wait(const WithIdentity& with_identity, id::Request r, std::chrono::milliseconds wait) {
    struct Pending {
        std::mutex mu;
        std::condition_variable cv;
        std::optional<id::Outcome> outcome;
    };
    auto pending = std::make_shared<Pending>();  // the callback may run after this returns
    Submitted s;
    s.had_service = with_identity([&](id::IdentityService& svc) {
        svc.submit(std::move(r), [pending](const id::Outcome& o) {
            {
                std::lock_guard lock(pending->mu);
                pending->outcome = o;
            }
            pending->cv.notify_all();
        });
    });
    if (!s.had_service) return s;
    std::unique_lock lock(pending->mu);
    pending->cv.wait_for(lock, wait, [&] { return pending->outcome.has_value(); });
    s.outcome = pending->outcome;
    return s;
}

// The answer to a request that did not apply. The identity service reports its own failures
// (not appended, stopped) in the outcome's text; everything else is the state machine's
// rejection, whose text is meant for the caller.
AdminResponse refused(const id::Outcome& o) {
    if (o.error.rfind("not appended to the identity log", 0) == 0 || o.error == "identity service stopped")
        return error(503, "identity log unavailable");
    if (o.error.rfind("unknown customer", 0) == 0) return unknown_customer();
    // Limits: the request is well-formed but cannot be carried out.
    if (o.error.find("identities") != std::string::npos &&
        (o.error.find("more than") != std::string::npos || o.error.find("already") != std::string::npos))
        return error(422, o.error);
    return error(409, o.error);
}

AdminResponse timed_out() { return error(503, "identity log did not answer in time"); }

// The survivor `customer_id` stands for, read through the service; nullopt when unknown and
// `ready` false when there is no service.
std::optional<id::Customer> find_customer(const WithIdentity& with_identity, std::string_view customer_id, bool& ready) {
    std::optional<id::Customer> c;
    ready = with_identity([&](id::IdentityService& svc) { c = svc.customer(customer_id); });
    return c;
}

// The survivor the customer id in a path stands for. Without one, `failure` is the answer:
// 503 while there is no identity service, 404 for an unknown, erased or impossible id.
std::optional<id::Customer> customer_in_path(const WithIdentity& with_identity, const std::string& customer_id,
                                             AdminResponse& failure) {
    bool ready = false;
    std::optional<id::Customer> c;
    if (plausible_customer_id(customer_id)) c = find_customer(with_identity, customer_id, ready);
    else ready = with_identity([](id::IdentityService&) {});
    if (!ready) failure = not_ready();
    else if (!c) failure = unknown_customer();
    return c;
}

// The answer to an applied link or unlink: the profile after it, and the merges it caused.
AdminResponse changed(const WithIdentity& with_identity, const id::Outcome& o) {
    bool ready = false;
    auto c = find_customer(with_identity, o.customer, ready);
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    if (c) {
        write_profile(w, *c);
    } else {  // erased or merged again since: the outcome is still what happened
        json::write_key(w, "customer_id");
        json::write_string(w, o.customer);
    }
    json::write_key(w, "merged");
    w.StartArray();
    for (const auto& m : o.merges) {
        w.StartObject();
        json::write_key(w, "from");
        json::write_string(w, m.from);
        json::write_key(w, "into");
        json::write_string(w, m.into);
        w.EndObject();
    }
    w.EndArray();
    if (!o.linked.empty()) write_strings(w, "linked", o.linked);
    if (!o.unlinked.empty()) write_strings(w, "unlinked", o.unlinked);
    w.EndObject();
    return answer(200, finish(buf));
}

// The `identity` member of a link request's body.
envelope::Result<std::string> identity_in_body(const std::string& body) {
    json::LocalDocument<2048> doc;
    json::ParseError perr;
    if (!json::parse(body, doc, json::Limits{16 * 1024, 4}, &perr))
        return envelope::Error{envelope::ErrorCode::bad_json, "body", "not JSON: " + perr.message};
    const json::Value& o = doc.doc();
    if (!o.IsObject()) return envelope::Error{envelope::ErrorCode::wrong_type, "body", "expected a JSON object"};
    auto it = o.FindMember("identity");
    if (it == o.MemberEnd())
        return envelope::Error{envelope::ErrorCode::missing_field, "identity", "required, e.g. \"email:ana@example.com\""};
    if (!it->value.IsString())
        return envelope::Error{envelope::ErrorCode::wrong_type, "identity",
                               std::string("expected a string, got ") + json::type_name(it->value)};
    return std::string(json::view(it->value));
}

}  // namespace

CustomerApi::CustomerApi(WithIdentity with_identity, CustomerApiOptions options, WithHistory with_history)
    : with_identity_(std::move(with_identity)), with_history_(std::move(with_history)), options_(options) {}

void CustomerApi::register_routes(AdminServer& server) {
    // A route matches the whole path, so `[^/]+` keeps a customer id from taking a sub-path.
    server.route("GET", kIdentityRoute, [this](const AdminRequest& r) { return get_identity(r); });
    server.route("POST", kCustomerIdentitiesRoute, [this](const AdminRequest& r) { return link(r); });
    server.route("DELETE", kCustomerIdentityRoute, [this](const AdminRequest& r) { return unlink(r); });
    server.route("PATCH", kCustomerAttributesRoute, [this](const AdminRequest& r) { return set_attributes(r); });
    server.route("GET", kCustomerMessagesRoute, [this](const AdminRequest& r) { return messages(r); });
    server.route("GET", kCustomerRoute, [this](const AdminRequest& r) { return get_customer(r); });
    server.route("DELETE", kCustomerRoute, [this](const AdminRequest& r) { return erase(r); });
}

AdminResponse CustomerApi::get_identity(const AdminRequest& req) const {
    if (req.matches.size() < 2) return error(404, "not found");
    const std::string& identity = req.matches[1];  // the server decoded %3A and friends
    std::optional<std::string> customer;
    const bool ready = with_identity_([&](id::IdentityService& svc) {
        if (id::check_identity(identity)) customer = svc.resolve_identity(identity);
    });
    if (!ready) return not_ready();
    if (auto st = id::check_identity(identity); !st) return error(400, st.error().to_string());
    if (!customer) return error(404, "unknown identity");
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "identity");
    json::write_string(w, identity);
    json::write_key(w, "customer_id");
    json::write_string(w, *customer);
    w.EndObject();
    return answer(200, finish(buf));
}

std::optional<ForwardResponse> CustomerApi::ask_holder(int partition, const AdminRequest& req, const std::string& target,
                                                       std::string& reason) const {
    if (req.forwarded) {
        reason = "forwarded";
        return std::nullopt;
    }
    std::optional<Holder> h;
    if (options_.holder && options_.forward) h = options_.holder(partition);
    // The directory only keeps URLs that pass this check; checked again where it matters.
    if (!h || !is_admin_url(h->admin_url)) {
        reason = "holder_unknown";
        return std::nullopt;
    }
    ForwardResponse resp = options_.forward(ForwardRequest{h->admin_url, target, req.authorization});
    if (resp.status == 0) {
        lg.warn("the holder of a history partition did not answer a forwarded admin request",
                {{"partition", partition}, {"holder", h->instance}, {"error", resp.error}});
        reason = "holder_unavailable";
        return std::nullopt;
    }
    if (resp.status == 401 || resp.status == 403) {
        // Relayed, the caller would read it as its own token refused, which it was not here.
        lg.warn("the holder of a history partition refused a forwarded admin request's token; instances sharing "
                "requests need the same admin.token",
                {{"partition", partition}, {"holder", h->instance}, {"status", resp.status}});
        reason = "holder_unavailable";
        return std::nullopt;
    }
    return resp;
}

AdminResponse CustomerApi::get_customer(const AdminRequest& req) const {
    if (req.matches.size() < 2) return error(404, "not found");
    AdminResponse failure;
    auto c = customer_in_path(with_identity_, req.matches[1], failure);
    if (!c) return failure;
    int partition = -1;
    bool here = false;
    std::vector<hist::ConversationSummary> conversations;
    const bool have_history = with_history([&](hist::ConversationStage& stage) {
        partition = stage.partition_of(c->id);
        here = stage.holds_partition(partition);
        if (here) conversations = stage.conversations(c->id).value_or(std::vector<hist::ConversationSummary>{});
    });

    // Not held here: the holder's conversations, asked for without holding the stage.
    std::string source = "here";
    json::LocalDocument<8192> holder_doc;
    const json::Value* holder_conversations = nullptr;
    if (have_history && !here) {
        auto resp = ask_holder(partition, req, "/v1/customers/" + path_segment(c->id), source);
        if (resp) {
            json::ParseError perr;
            // The holder's answer for the same survivor (identity states agree once both applied
            // the log; until then its answer is about someone else and is not used).
            if (resp->status == 200 && json::parse(resp->body, holder_doc, json::Limits{8u << 20, 16}, &perr) &&
                holder_doc.doc().IsObject()) {
                const auto& d = holder_doc.doc();
                auto id = d.FindMember("customer_id");
                auto convs = d.FindMember("conversations");
                if (id != d.MemberEnd() && id->value.IsString() && json::view(id->value) == c->id &&
                    convs != d.MemberEnd() && convs->value.IsArray())
                    holder_conversations = &convs->value;
            }
            source = holder_conversations ? "holder" : "holder_unavailable";
        }
    }

    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    write_profile(w, *c);
    if (have_history) {
        json::write_key(w, "history");
        w.StartObject();
        json::write_key(w, "held_here");
        w.Bool(here);
        json::write_key(w, "partition");
        w.Int(partition);
        json::write_key(w, "source");
        json::write_string(w, source);
        w.EndObject();
        if (here) {
            write_conversations(w, conversations);
        } else if (holder_conversations) {
            json::write_key(w, "conversations");
            holder_conversations->Accept(w);
        }
    }
    w.EndObject();
    return answer(200, finish(buf));
}

AdminResponse CustomerApi::messages(const AdminRequest& req) const {
    if (req.matches.size() < 2) return error(404, "not found");
    AdminResponse failure;
    auto c = customer_in_path(with_identity_, req.matches[1], failure);
    if (!c) return failure;

    hist::MessageQuery q;
    if (auto v = req.query_param("channel"); !v.empty()) q.channel = v;
    if (auto v = req.query_param("conversation"); !v.empty()) q.conversation = v;
    if (auto v = req.query_param("before"); !v.empty()) {
        // The cursor is a key of this customer's history; anything else is refused, not ignored.
        if (v.rfind("h/" + c->id + "/", 0) != 0) return error(400, "before: not a cursor of this customer's messages");
        q.before = v;
    }
    if (auto v = req.query_param("limit"); !v.empty()) {
        std::size_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc{} || p != v.data() + v.size() || n < 1 || n > 1000)
            return error(400, "limit: a number from 1 to 1000");
        q.limit = n;
    }
    std::optional<AdminResponse> out;
    int elsewhere = -1;
    const bool have = with_history([&](hist::ConversationStage& stage) {
        const int partition = stage.partition_of(c->id);
        if (!stage.holds_partition(partition)) {
            elsewhere = partition;
            return;
        }
        auto page = stage.messages(c->id, q).value_or(hist::MessagePage{});
        rapidjson::StringBuffer buf;
        json::Writer w(buf);
        w.StartObject();
        json::write_key(w, "customer_id");
        json::write_string(w, c->id);
        json::write_key(w, "messages");
        w.StartArray();
        for (const auto& e : page.entries) write_entry(w, e);
        w.EndArray();
        if (page.next) {
            json::write_key(w, "next");
            json::write_string(w, *page.next);
        }
        w.EndObject();
        out = answer(200, finish(buf));
    });
    if (!have) return error(503, "history not ready");
    if (out) return *out;
    // The same request (path and query as they came) to the holder, whose answer is the answer.
    std::string reason;
    if (auto resp = ask_holder(elsewhere, req, req.target, reason)) return answer(resp->status, std::move(resp->body));
    return held_elsewhere(elsewhere, reason);
}

AdminResponse CustomerApi::link(const AdminRequest& req) const {
    if (req.matches.size() < 2) return error(404, "not found");
    if (!with_identity_([](id::IdentityService&) {})) return not_ready();
    auto raw = identity_in_body(req.body);
    if (!raw.ok()) return error(400, raw.error().to_string());
    auto identity = identity_to_link(*raw, options_.email);
    if (!identity.ok()) return error(400, identity.error().to_string());
    AdminResponse failure;
    auto target = customer_in_path(with_identity_, req.matches[1], failure);
    if (!target) return failure;

    id::Request r;
    r.op = id::Op::link;
    r.customer = target->id;
    r.identities = {std::move(identity).value()};
    auto s = submit_and_wait(with_identity_, std::move(r), options_.wait);
    if (!s.had_service) return not_ready();
    if (!s.outcome) return timed_out();
    if (!s.outcome->ok) return refused(*s.outcome);
    // A merge: the alias's history moves to the survivor now, not only at its next message.
    if (!s.outcome->merges.empty())
        with_history([&](hist::ConversationStage& stage) {
            for (const auto& m : s.outcome->merges) stage.move_history(m.from, m.into);
        });
    return changed(with_identity_, *s.outcome);
}

AdminResponse CustomerApi::unlink(const AdminRequest& req) const {
    if (req.matches.size() < 3) return error(404, "not found");
    if (!with_identity_([](id::IdentityService&) {})) return not_ready();
    const std::string& identity = req.matches[2];
    if (auto st = id::check_identity(identity); !st) return error(400, st.error().to_string());
    AdminResponse failure;
    auto target = customer_in_path(with_identity_, req.matches[1], failure);
    if (!target) return failure;

    id::Request r;
    r.op = id::Op::unlink;
    r.customer = target->id;
    r.identities = {identity};
    auto s = submit_and_wait(with_identity_, std::move(r), options_.wait);
    if (!s.had_service) return not_ready();
    if (!s.outcome) return timed_out();
    if (!s.outcome->ok) return refused(*s.outcome);
    return changed(with_identity_, *s.outcome);
}

// PATCH /v1/customers/<id>/attributes {"tier": "vip", "old": null}: a JSON merge patch of
// string values (null removes), applied through the identity log so every instance has it.
AdminResponse CustomerApi::set_attributes(const AdminRequest& req) const {
    if (req.matches.size() < 2) return error(404, "not found");
    if (!with_identity_([](id::IdentityService&) {})) return not_ready();
    json::LocalDocument<2048> doc;
    json::ParseError perr;
    if (!json::parse(req.body, doc, json::Limits{32 * 1024, 4}, &perr))
        return error(400, "body: not JSON: " + perr.message);
    const json::Value& o = doc.doc();
    if (!o.IsObject() || o.MemberCount() == 0)
        return error(400, "body: expected a JSON object of attributes, e.g. {\"tier\": \"vip\"}");
    id::Request r;
    r.op = id::Op::attributes;
    for (auto m = o.MemberBegin(); m != o.MemberEnd(); ++m) {
        const std::string name(json::view(m->name));
        if (m->value.IsNull()) r.attributes[name] = std::nullopt;
        else if (m->value.IsString()) r.attributes[name] = std::string(json::view(m->value));
        else return error(400, name + ": expected a string or null, got " + json::type_name(m->value));
        // Routing reads `time_zone` as the customer's zone: an IANA name this machine knows.
        if (name == "time_zone" && m->value.IsString() && !pipeline::route::load_time_zone(json::view(m->value)))
            return error(400, "time_zone: '" + std::string(json::view(m->value)).substr(0, 64) +
                                  "' is not an IANA time zone name (e.g. Europe/Madrid)");
    }
    AdminResponse failure;
    auto target = customer_in_path(with_identity_, req.matches[1], failure);
    if (!target) return failure;
    r.customer = target->id;
    r.id = envelope::new_id();
    // The log's own checks (names, sizes, count) answer 400 before anything is appended.
    if (auto checked = id::decode_request(id::encode(r)); !checked.ok()) return error(400, checked.error().to_string());
    auto s = submit_and_wait(with_identity_, std::move(r), options_.wait);
    if (!s.had_service) return not_ready();
    if (!s.outcome) return timed_out();
    if (!s.outcome->ok) return refused(*s.outcome);
    return changed(with_identity_, *s.outcome);
}

AdminResponse CustomerApi::erase(const AdminRequest& req) const {
    if (req.matches.size() < 2) return error(404, "not found");
    AdminResponse failure;
    auto target = customer_in_path(with_identity_, req.matches[1], failure);
    if (!target) return failure;

    // History first: once the erase commands are on Kafka, the history goes whatever happens
    // next; an identity erased first would leave history nobody could find to erase.
    if (with_history_) {
        std::vector<std::string> ids{target->id};
        ids.insert(ids.end(), target->aliases.begin(), target->aliases.end());
        bool erased = false;
        if (!with_history([&](hist::ConversationStage& stage) { erased = stage.erase_history(ids, options_.wait); }))
            return error(503, "history not ready");
        if (!erased) return error(503, "history erasure could not be written; nothing was erased");
    }

    id::Request r;
    r.op = id::Op::erase;
    r.customer = target->id;
    auto s = submit_and_wait(with_identity_, std::move(r), options_.wait);
    if (!s.had_service) return not_ready();
    if (!s.outcome) return timed_out();
    if (!s.outcome->ok) return refused(*s.outcome);
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    write_strings(w, "erased", s.outcome->erased_customers);
    w.EndObject();
    return answer(200, finish(buf));
}

}  // namespace omnibus::daemon
