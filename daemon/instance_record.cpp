// The <prefix>instances record format and the holder map (see instance_record.h).
#include "daemon/instance_record.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "envelope/json.h"
#include "envelope/timestamp.h"
#include "log/log.h"

namespace omnibus::daemon {
namespace {

constexpr log::Logger lg{"instances"};

using envelope::Error;
using envelope::ErrorCode;

constexpr std::size_t kMaxValueBytes = 64 * 1024;  // 10,000 partitions of 5 digits fit

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// A DNS name (or an IPv4 address, which has the same shape): dot-separated labels of
// [A-Za-z0-9_-], none empty, none starting or ending with '-'.
bool is_host_name(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = h.find('.', start);
        const std::string_view label = h.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        if (!std::all_of(label.begin(), label.end(), is_host_char)) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

bool is_ipv6_literal(std::string_view inside) {
    if (inside.empty() || inside.size() > 45) return false;
    const std::string s(inside);
    unsigned char buf[16];
    return ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Error bad(std::string field, std::string message) { return Error{ErrorCode::bad_value, std::move(field), std::move(message)}; }

}  // namespace

bool is_admin_url(std::string_view url) {
    std::string_view rest;
    if (url.rfind("http://", 0) == 0) rest = url.substr(7);
    else if (url.rfind("https://", 0) == 0) rest = url.substr(8);
    else return false;
    std::string_view host;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') return false;
        if (!is_ipv6_literal(rest.substr(1, close - 1))) return false;
        host = rest.substr(0, close + 1);
        port = rest.substr(close + 2);
    } else {
        const auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) return false;
        host = rest.substr(0, colon);
        port = rest.substr(colon + 1);
        if (!is_host_name(host)) return false;
    }
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    unsigned n = 0;
    std::from_chars(port.data(), port.data() + port.size(), n);
    return n >= 1 && n <= 65535;
}

bool is_instance_id(std::string_view id) {
    return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == ':' || c == '-';
           });
}

std::string encode(const InstanceRecord& r) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "instance");
    json::write_string(w, r.instance);
    json::write_key(w, "admin_url");
    json::write_string(w, r.admin_url);
    json::write_key(w, "partitions");
    w.StartArray();
    for (int p : r.partitions) w.Int(p);
    w.EndArray();
    json::write_key(w, "at");
    json::write_string(w, envelope::format_rfc3339(envelope::Timestamp(std::chrono::milliseconds(r.at_ms))));
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

envelope::Result<InstanceRecord> decode_instance_record(std::string_view key, std::string_view value,
                                                        int partition_count) {
    if (!is_instance_id(key)) return bad("key", "not an instance id: '" + json::excerpt(key) + "'");
    json::LocalDocument<4096> doc;
    json::ParseError perr;
    if (!json::parse(value, doc, json::Limits{kMaxValueBytes, 8}, &perr))
        return Error{ErrorCode::bad_json, "value", perr.message};
    const json::Value& o = doc.doc();
    if (!o.IsObject()) return Error{ErrorCode::wrong_type, "value", "expected a JSON object"};

    auto string_member = [&](const char* name, std::string& out) -> envelope::Status {
        auto it = o.FindMember(name);
        if (it == o.MemberEnd() || it->value.IsNull()) return Error{ErrorCode::missing_field, name, "required"};
        if (!it->value.IsString())
            return Error{ErrorCode::wrong_type, name, std::string("expected a string, got ") + json::type_name(it->value)};
        out.assign(json::view(it->value));
        return {};
    };

    InstanceRecord r;
    if (auto st = string_member("instance", r.instance); !st) return st.error();
    if (r.instance != key) return bad("instance", "'" + json::excerpt(r.instance) + "' is not the record's key");
    if (auto st = string_member("admin_url", r.admin_url); !st) return st.error();
    if (!is_admin_url(r.admin_url))
        return bad("admin_url", "'" + json::excerpt(r.admin_url) + "' is not http(s)://host:port");
    std::string at;
    if (auto st = string_member("at", at); !st) return st.error();
    auto t = envelope::parse_rfc3339(at);
    if (!t) return bad("at", "not an RFC 3339 time");
    r.at_ms = t->time_since_epoch().count();

    auto parts = o.FindMember("partitions");
    if (parts == o.MemberEnd() || parts->value.IsNull()) return Error{ErrorCode::missing_field, "partitions", "required"};
    if (!parts->value.IsArray())
        return Error{ErrorCode::wrong_type, "partitions",
                     std::string("expected an array, got ") + json::type_name(parts->value)};
    for (const auto& p : parts->value.GetArray()) {
        if (!p.IsInt()) return Error{ErrorCode::wrong_type, "partitions", "expected partition numbers"};
        const int n = p.GetInt();
        if (n < 0 || n >= partition_count)
            return bad("partitions", std::to_string(n) + " is not a partition (there are " +
                                         std::to_string(partition_count) + ")");
        r.partitions.push_back(n);
    }
    std::sort(r.partitions.begin(), r.partitions.end());
    r.partitions.erase(std::unique(r.partitions.begin(), r.partitions.end()), r.partitions.end());
    return r;
}

void HolderMap::apply(InstanceRecord record, std::int64_t offset) {
    std::string key = record.instance;
    by_instance_[std::move(key)] = Entry{std::move(record), offset};
}

void HolderMap::remove(std::string_view instance) {
    if (auto it = by_instance_.find(instance); it != by_instance_.end()) by_instance_.erase(it);
}

std::optional<Holder> HolderMap::holder(int partition) const {
    const Entry* best = nullptr;
    for (const auto& [_, e] : by_instance_)
        if ((!best || e.offset > best->offset) &&
            std::binary_search(e.record.partitions.begin(), e.record.partitions.end(), partition))
            best = &e;
    if (!best) return std::nullopt;
    return Holder{best->record.instance, best->record.admin_url};
}

std::vector<std::string> HolderMap::stale(std::string_view own, std::int64_t now_ms, std::int64_t grace_ms) const {
    std::vector<std::string> out;
    for (const auto& [instance, e] : by_instance_) {
        if (instance == own || now_ms - e.record.at_ms <= grace_ms) continue;
        const bool superseded = std::all_of(e.record.partitions.begin(), e.record.partitions.end(), [&](int p) {
            return std::any_of(by_instance_.begin(), by_instance_.end(), [&](const auto& other) {
                return other.first != instance && other.second.offset > e.offset &&
                       std::binary_search(other.second.record.partitions.begin(),
                                          other.second.record.partitions.end(), p);
            });
        });
        if (superseded) out.push_back(instance);
    }
    return out;
}

bool HolderMap::read(std::string_view key, std::string_view value, bool tombstone, std::int64_t offset,
                     int partition_count, std::string_view own_instance, std::string_view own_url) {
    if (tombstone) {
        remove(key);
        return true;
    }
    auto r = decode_instance_record(key, value, partition_count);
    if (!r.ok()) {
        remove(key);
        lg.warn("instance record ignored", {{"key", json::excerpt(key)},
                                            {"offset", static_cast<long long>(offset)},
                                            {"error", r.error().to_string()}});
        return false;
    }
    if (r->instance != own_instance && r->admin_url == own_url) {
        remove(key);
        lg.warn("instance record ignored: another instance advertises this instance's admin URL; set admin.advertise",
                {{"instance", r->instance}, {"admin_url", r->admin_url}, {"offset", static_cast<long long>(offset)}});
        return false;
    }
    apply(std::move(r).value(), offset);
    return true;
}

}  // namespace omnibus::daemon
