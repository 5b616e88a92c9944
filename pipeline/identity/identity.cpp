// Identity strings, identity-log requests and the state machine (see identity.h).
#include "pipeline/identity/identity.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <unordered_set>

#include "envelope/id.h"
#include "envelope/json.h"

namespace omnibus::pipeline::identity {
namespace {

using envelope::Error;
using envelope::ErrorCode;

bool is_kind_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

bool has_space_or_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7F;
    });
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

void add_unique(std::vector<std::string>& v, std::string_view s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.emplace_back(s);
}

// Appends, in order, the values of `from` that `to` does not hold yet: add_unique for each,
// without its scan of `to` per value. A merge joins two customers' request ids, up to
// kMaxRequestsPerCustomer each: scanning would compare 10^10 strings on the log's reader.
void add_all_unique(std::vector<std::string>& to, const std::vector<std::string>& from) {
    to.reserve(to.size() + from.size());  // no reallocation: the views below stay valid
    std::unordered_set<std::string_view> have(to.begin(), to.end());
    for (const auto& s : from)
        if (have.insert(s).second) to.push_back(s);
}

void remove_value(std::vector<std::string>& v, std::string_view s) {
    v.erase(std::remove(v.begin(), v.end(), s), v.end());
}

// ---- JSON helpers

void write_strings(json::Writer& w, std::string_view key, const std::vector<std::string>& v) {
    json::write_key(w, key);
    w.StartArray();
    for (const auto& s : v) json::write_string(w, s);
    w.EndArray();
}

const json::Value* member(const json::Value& o, const char* name) {
    auto it = o.FindMember(name);
    return it == o.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

Error field_error(ErrorCode code, std::string field, std::string message) {
    return Error{code, std::move(field), std::move(message)};
}

std::optional<Op> parse_op(std::string_view s) {
    if (s == "observe") return Op::observe;
    if (s == "link") return Op::link;
    if (s == "unlink") return Op::unlink;
    if (s == "erase") return Op::erase;
    if (s == "attributes") return Op::attributes;
    return std::nullopt;
}

// ---- the state machine

// The survivor among `customers` (distinct survivors): created first on the log.
const Customer& oldest(const std::vector<Customer>& customers) {
    return *std::min_element(customers.begin(), customers.end(), [](const Customer& a, const Customer& b) {
        return a.created_seq != b.created_seq ? a.created_seq < b.created_seq : a.id < b.id;
    });
}

// Folds `from` into `into` (both survivors, distinct): identities, aliases and request ids
// move; `from` and its aliases point at `into`.
void merge_into(Customer& into, Customer& from, Store& store, Outcome& out) {
    for (const auto& ident : from.identities) {
        store.put_identity(ident, into.id);
        add_unique(into.identities, ident);
    }
    for (const auto& alias_id : from.aliases) {
        if (auto alias = store.customer(alias_id)) {
            alias->merged_into = into.id;
            store.put_customer(*alias);
        }
        add_unique(into.aliases, alias_id);
    }
    add_unique(into.aliases, from.id);
    add_all_unique(into.requests, from.requests);
    for (auto& [name, value] : from.attributes) into.attributes.try_emplace(name, std::move(value));
    from.attributes.clear();
    from.merged_into = into.id;
    from.identities.clear();
    from.aliases.clear();
    from.requests.clear();
    store.put_customer(from);
    out.merges.push_back({from.id, into.id});
}

Outcome rejected(std::string why) {
    Outcome o;
    o.ok = false;
    o.error = std::move(why);
    return o;
}

Outcome too_many_identities() {
    return rejected("a customer would have more than " + std::to_string(kMaxIdentitiesPerCustomer) + " identities");
}

// Merges every customer in `found` into the oldest; returns the survivor (not yet stored).
Customer merge_all(std::vector<Customer> found, Store& store, Outcome& out) {
    Customer survivor = oldest(found);
    for (auto& c : found)
        if (c.id != survivor.id) merge_into(survivor, c, store, out);
    return survivor;
}

// The end of observe and link: the request's identities that no customer holds (after the
// merges) go to the survivor, which records the request and is stored.
void link_unmapped(Customer& survivor, const Request& r, Store& store, Outcome& out) {
    for (const auto& ident : r.identities) {
        if (store.customer_of(ident)) continue;  // the survivor's (merged) or already linked
        store.put_identity(ident, survivor.id);
        add_unique(survivor.identities, ident);
        out.linked.push_back(ident);
    }
    if (survivor.requests.size() < kMaxRequestsPerCustomer) add_unique(survivor.requests, r.id);
    store.put_customer(survivor);
    out.customer = survivor.id;
}

Outcome apply_observe(const Request& r, std::int64_t seq, Store& store) {
    Outcome out;
    std::vector<Customer> found;
    for (const auto& ident : r.identities) {
        auto cid = store.customer_of(ident);
        if (!cid) continue;
        auto c = resolve(store, *cid);
        if (!c) continue;  // dangling (cannot happen through apply); treated as unlinked
        if (std::none_of(found.begin(), found.end(), [&](const Customer& f) { return f.id == c->id; }))
            found.push_back(std::move(*c));
    }
    std::size_t total = 0;
    for (const auto& c : found) total += c.identities.size();
    std::size_t adding = 0;
    for (const auto& ident : r.identities)
        if (!store.customer_of(ident)) ++adding;
    if (total + adding > kMaxIdentitiesPerCustomer) return too_many_identities();

    Customer survivor;
    if (found.empty()) {
        if (store.customer(r.customer)) return rejected("customer id " + r.customer + " is taken");
        survivor.id = r.customer;
        survivor.created_seq = seq;
        survivor.created_ms = r.at_ms;
        out.created = true;
    } else {
        survivor = merge_all(std::move(found), store, out);
    }
    link_unmapped(survivor, r, store, out);
    return out;
}

Outcome apply_link(const Request& r, Store& store) {
    auto target = resolve(store, r.customer);
    if (!target) return rejected("unknown customer " + r.customer);
    const std::string& ident = r.identities.front();
    Outcome out;
    std::vector<Customer> found{*target};
    if (auto owner = store.customer_of(ident)) {
        auto c = resolve(store, *owner);
        if (c && c->id != target->id) {
            if (c->identities.size() + target->identities.size() > kMaxIdentitiesPerCustomer)
                return too_many_identities();
            found.push_back(std::move(*c));
        }
    } else if (target->identities.size() + 1 > kMaxIdentitiesPerCustomer) {
        return rejected("customer has " + std::to_string(kMaxIdentitiesPerCustomer) + " identities already");
    }
    Customer survivor = merge_all(std::move(found), store, out);
    link_unmapped(survivor, r, store, out);
    return out;
}

Outcome apply_unlink(const Request& r, Store& store) {
    auto target = resolve(store, r.customer);
    if (!target) return rejected("unknown customer " + r.customer);
    const std::string& ident = r.identities.front();
    auto owner = store.customer_of(ident);
    auto owner_survivor = owner ? resolve(store, *owner) : std::nullopt;
    if (!owner_survivor || owner_survivor->id != target->id)
        return rejected(ident + " is not linked to customer " + target->id);
    Outcome out;
    store.erase_identity(ident);
    remove_value(target->identities, ident);
    // The request names the identity: erasing the customer later must tombstone it too.
    if (target->requests.size() < kMaxRequestsPerCustomer) add_unique(target->requests, r.id);
    store.put_customer(*target);
    out.unlinked.push_back(ident);
    out.customer = target->id;
    return out;
}

bool valid_attribute_name(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

bool valid_attribute_value(std::string_view s) { return s.size() <= 256 && json::is_valid_utf8(s); }

Outcome apply_attributes(const Request& r, Store& store) {
    auto target = resolve(store, r.customer);
    if (!target) return rejected("no customer " + r.customer);
    for (const auto& [name, value] : r.attributes) {
        if (value) target->attributes[name] = *value;
        else target->attributes.erase(name);
    }
    if (target->attributes.size() > kMaxAttributes)
        return rejected("a customer would have more than " + std::to_string(kMaxAttributes) + " attributes");
    add_unique(target->requests, r.id);  // an erasure tombstones it: attributes are personal data
    store.put_customer(*target);
    Outcome o;
    o.customer = target->id;
    return o;
}

Outcome apply_erase(const Request& r, Store& store) {
    auto target = resolve(store, r.customer);
    if (!target) return rejected("unknown customer " + r.customer);
    Outcome out;
    for (const auto& ident : target->identities) {
        store.erase_identity(ident);
        out.unlinked.push_back(ident);
    }
    for (const auto& alias : target->aliases) {
        store.erase_customer(alias);
        out.erased_customers.push_back(alias);
    }
    store.erase_customer(target->id);
    out.erased_customers.push_back(target->id);
    // The erase request itself stays on the log: it names only the customer id, which points
    // nowhere any more, and an instance that applied part of this customer's history before
    // the other requests were compacted away still needs it.
    out.tombstone_requests = target->requests;
    out.customer = target->id;
    return out;
}

}  // namespace

// ---- identity strings

std::string_view kind_of(std::string_view identity) {
    const std::size_t colon = identity.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == identity.size()) return {};
    std::string_view kind = identity.substr(0, colon);
    return std::all_of(kind.begin(), kind.end(), is_kind_char) ? kind : std::string_view{};
}

envelope::Status check_identity(std::string_view identity) {
    if (identity.size() > kMaxIdentityBytes)
        return Error{ErrorCode::bad_value, "identity",
                     "longer than " + std::to_string(kMaxIdentityBytes) + " bytes"};
    if (kind_of(identity).empty())
        return Error{ErrorCode::bad_value, "identity",
                     "not kind:value with a kind of [a-z0-9_-]: " + json::excerpt(identity)};
    std::string_view value = identity.substr(identity.find(':') + 1);
    if (has_space_or_control(value))
        return Error{ErrorCode::bad_value, "identity", "spaces or control characters in " + json::excerpt(identity)};
    if (!json::is_valid_utf8(value)) return Error{ErrorCode::bad_utf8, "identity", "not valid UTF-8"};
    return {};
}

std::optional<std::string> normalize_email(std::string_view address, const EmailRules& rules) {
    std::string_view a = trim(address);
    if (a.empty() || a.size() > 254 || has_space_or_control(a) || !json::is_valid_utf8(a)) return std::nullopt;
    const std::size_t at = a.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return std::nullopt;
    std::string_view local = a.substr(0, at);
    std::string_view domain = a.substr(at + 1);
    if (local.find('@') != std::string_view::npos && !(local.front() == '"' && local.back() == '"'))
        return std::nullopt;
    if (local.size() > 64 || domain.find('.') == std::string_view::npos || domain.front() == '.' ||
        domain.back() == '.' || domain.find("..") != std::string_view::npos)
        return std::nullopt;
    std::string d(domain);
    std::transform(d.begin(), d.end(), d.begin(), ascii_lower);
    std::string l(local);
    if (rules.lowercase_local_part) std::transform(l.begin(), l.end(), l.begin(), ascii_lower);
    if (rules.fold_gmail && (d == "gmail.com" || d == "googlemail.com")) {
        if (auto plus = l.find('+'); plus != std::string::npos) l.resize(plus);
        l.erase(std::remove(l.begin(), l.end(), '.'), l.end());
        std::transform(l.begin(), l.end(), l.begin(), ascii_lower);
        d = "gmail.com";
        if (l.empty()) return std::nullopt;
    }
    return l + "@" + d;
}

// ---- requests

std::string_view op_name(Op op) {
    switch (op) {
        case Op::observe: return "observe";
        case Op::link: return "link";
        case Op::unlink: return "unlink";
        case Op::erase: return "erase";
        case Op::attributes: return "attributes";
    }
    return "?";
}

std::string request_key(std::string_view request_id) { return "r:" + std::string(request_id); }

std::string encode(const Request& r) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "v");
    w.Int(1);
    json::write_key(w, "op");
    json::write_string(w, op_name(r.op));
    json::write_key(w, "id");
    json::write_string(w, r.id);
    if (!r.customer.empty()) {
        json::write_key(w, "customer");
        json::write_string(w, r.customer);
    }
    if (!r.identities.empty()) write_strings(w, "identities", r.identities);
    if (!r.attributes.empty()) {
        json::write_key(w, "attributes");
        w.StartObject();
        for (const auto& [name, value] : r.attributes) {
            json::write_key(w, name);
            if (value) json::write_string(w, *value);
            else w.Null();
        }
        w.EndObject();
    }
    json::write_key(w, "at_ms");
    w.Int64(r.at_ms);
    if (!r.origin.empty()) {
        json::write_key(w, "origin");
        json::write_string(w, r.origin);
    }
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

envelope::Result<Request> decode_request(std::string_view text) {
    json::LocalDocument<4096> doc;
    json::ParseError perr;
    if (!json::parse(text, doc, json::Limits{64 * 1024, 8}, &perr))
        return field_error(ErrorCode::bad_json, "body", perr.message);
    const json::Value& o = doc.doc();
    if (!o.IsObject()) return field_error(ErrorCode::wrong_type, "body", "expected an object");
    Request r;
    const json::Value* v = member(o, "v");
    if (!v || !v->IsInt()) return field_error(ErrorCode::missing_field, "v", "expected the version number");
    if (v->GetInt() != 1) return field_error(ErrorCode::bad_value, "v", "unsupported version " + std::to_string(v->GetInt()));
    const json::Value* op = member(o, "op");
    if (!op || !op->IsString()) return field_error(ErrorCode::missing_field, "op", "expected a string");
    auto parsed = parse_op(json::view(*op));
    if (!parsed) return field_error(ErrorCode::bad_value, "op", "unknown op " + json::excerpt(json::view(*op)));
    r.op = *parsed;
    const json::Value* id = member(o, "id");
    if (!id || !id->IsString() || id->GetStringLength() == 0 || id->GetStringLength() > 64)
        return field_error(ErrorCode::missing_field, "id", "expected a request id");
    r.id = json::view(*id);
    if (const json::Value* c = member(o, "customer")) {
        if (!c->IsString() || c->GetStringLength() == 0 || c->GetStringLength() > 64 || has_space_or_control(json::view(*c)))
            return field_error(ErrorCode::bad_value, "customer", "expected a customer id");
        r.customer = json::view(*c);
    }
    if (r.customer.empty()) return field_error(ErrorCode::missing_field, "customer", "required");
    if (const json::Value* ids = member(o, "identities")) {
        if (!ids->IsArray()) return field_error(ErrorCode::wrong_type, "identities", "expected an array");
        if (ids->Size() > kMaxIdentitiesPerCustomer)
            return field_error(ErrorCode::bad_value, "identities", "too many");
        for (const auto& e : ids->GetArray()) {
            if (!e.IsString()) return field_error(ErrorCode::wrong_type, "identities", "expected strings");
            std::string_view s = json::view(e);
            if (auto st = check_identity(s); !st) return field_error(st.error().code, "identities", st.error().message);
            add_unique(r.identities, s);
        }
    }
    const std::size_t n = r.identities.size();
    if (r.op == Op::observe && n == 0) return field_error(ErrorCode::missing_field, "identities", "observe needs one at least");
    if ((r.op == Op::link || r.op == Op::unlink) && n != 1)
        return field_error(ErrorCode::bad_value, "identities", std::string(op_name(r.op)) + " takes exactly one");
    if ((r.op == Op::erase || r.op == Op::attributes) && n != 0)
        return field_error(ErrorCode::bad_value, "identities", std::string(op_name(r.op)) + " takes none");
    if (const json::Value* a = member(o, "attributes")) {
        if (!a->IsObject()) return field_error(ErrorCode::wrong_type, "attributes", "expected an object");
        if (a->MemberCount() > kMaxAttributes) return field_error(ErrorCode::bad_value, "attributes", "too many");
        for (auto m = a->MemberBegin(); m != a->MemberEnd(); ++m) {
            std::string_view name = json::view(m->name);
            if (!valid_attribute_name(name))
                return field_error(ErrorCode::bad_value, "attributes", "bad name " + json::excerpt(name));
            if (m->value.IsNull()) {
                r.attributes[std::string(name)] = std::nullopt;
            } else if (m->value.IsString() && valid_attribute_value(json::view(m->value))) {
                r.attributes[std::string(name)] = std::string(json::view(m->value));
            } else {
                return field_error(ErrorCode::bad_value, "attributes",
                                   std::string(name) + ": expected a string of at most 256 bytes, or null");
            }
        }
    }
    if (r.op == Op::attributes && r.attributes.empty())
        return field_error(ErrorCode::missing_field, "attributes", "attributes needs one at least");
    if (r.op != Op::attributes && !r.attributes.empty())
        return field_error(ErrorCode::bad_value, "attributes", "only the attributes op takes them");
    if (const json::Value* at = member(o, "at_ms")) {
        if (!at->IsInt64()) return field_error(ErrorCode::wrong_type, "at_ms", "expected an integer");
        r.at_ms = at->GetInt64();
    }
    if (const json::Value* origin = member(o, "origin")) {
        if (!origin->IsString() || origin->GetStringLength() > 128)
            return field_error(ErrorCode::bad_value, "origin", "expected a short string");
        r.origin = json::view(*origin);
    }
    return r;
}

// ---- customers

std::string encode(const Customer& c) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "id");
    json::write_string(w, c.id);
    json::write_key(w, "created_seq");
    w.Int64(c.created_seq);
    json::write_key(w, "created_ms");
    w.Int64(c.created_ms);
    if (c.merged_into) {
        json::write_key(w, "merged_into");
        json::write_string(w, *c.merged_into);
    }
    write_strings(w, "identities", c.identities);
    write_strings(w, "aliases", c.aliases);
    write_strings(w, "requests", c.requests);
    if (!c.attributes.empty()) {
        json::write_key(w, "attributes");
        w.StartObject();
        for (const auto& [name, value] : c.attributes) {
            json::write_key(w, name);
            json::write_string(w, value);
        }
        w.EndObject();
    }
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

std::optional<Customer> decode_customer(std::string_view text) {
    json::LocalDocument<4096> doc;
    if (!json::parse(text, doc, json::Limits{64 << 20, 8}, nullptr)) return std::nullopt;
    const json::Value& o = doc.doc();
    if (!o.IsObject()) return std::nullopt;
    Customer c;
    const json::Value* id = member(o, "id");
    const json::Value* seq = member(o, "created_seq");
    const json::Value* ms = member(o, "created_ms");
    if (!id || !id->IsString() || !seq || !seq->IsInt64() || !ms || !ms->IsInt64()) return std::nullopt;
    c.id = json::view(*id);
    c.created_seq = seq->GetInt64();
    c.created_ms = ms->GetInt64();
    if (const json::Value* m = member(o, "merged_into")) {
        if (!m->IsString()) return std::nullopt;
        c.merged_into = std::string(json::view(*m));
    }
    auto strings = [&](const char* name, std::vector<std::string>& out) {
        const json::Value* a = member(o, name);
        if (!a) return true;
        if (!a->IsArray()) return false;
        out.reserve(a->Size());
        for (const auto& e : a->GetArray()) {
            if (!e.IsString()) return false;
            out.emplace_back(json::view(e));
        }
        return true;
    };
    if (!strings("identities", c.identities) || !strings("aliases", c.aliases) || !strings("requests", c.requests))
        return std::nullopt;
    if (const json::Value* a = member(o, "attributes")) {
        if (!a->IsObject()) return std::nullopt;
        for (auto m = a->MemberBegin(); m != a->MemberEnd(); ++m) {
            if (!m->value.IsString()) return std::nullopt;
            c.attributes.emplace(json::view(m->name), json::view(m->value));
        }
    }
    return c;
}

std::optional<Customer> resolve(Store& store, std::string_view id) {
    auto c = store.customer(id);
    if (!c) return std::nullopt;
    if (!c->merged_into) return c;
    for (int hops = 0; hops < kMaxMergeHops && c && c->merged_into; ++hops) c = store.customer(*c->merged_into);
    return c && !c->merged_into ? c : std::nullopt;
}

Outcome apply(const Request& r, std::int64_t seq, Store& store) {
    switch (r.op) {
        case Op::observe: return apply_observe(r, seq, store);
        case Op::link: return apply_link(r, store);
        case Op::unlink: return apply_unlink(r, store);
        case Op::erase: return apply_erase(r, store);
        case Op::attributes: return apply_attributes(r, store);
    }
    return rejected("unknown op");
}

}  // namespace omnibus::pipeline::identity
