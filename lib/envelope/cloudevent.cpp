// CloudEvents binary-mode mapping between attributes + JSON data and a Kafka record.
#include "envelope/cloudevent.h"

#include <array>

namespace omnibus::envelope {
namespace {

Error header_error(ErrorCode code, std::string_view name, std::string message) {
    return Error{code, "header " + std::string(name), std::move(message)};
}

// Values are echoed into errors, which end up in logs and headers.
std::string quoted(std::string_view v) { return "\"" + json::excerpt(v) + "\""; }

bool is_printable_utf8(std::string_view v) {
    for (const char ch : v) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) return false;
    }
    return json::is_valid_utf8(v);
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// "application/json", optionally with parameters; a charset must be UTF-8.
bool is_json_content_type(std::string_view v) {
    std::size_t semi = v.find(';');
    if (!iequals(trim(v.substr(0, semi)), kContentTypeJson)) return false;
    while (semi != std::string_view::npos) {
        v = v.substr(semi + 1);
        semi = v.find(';');
        const std::string_view param = trim(v.substr(0, semi));
        const std::size_t eq = param.find('=');
        if (eq == std::string_view::npos || !iequals(trim(param.substr(0, eq)), "charset")) continue;
        std::string_view cs = trim(param.substr(eq + 1));
        if (cs.size() >= 2 && cs.front() == '"' && cs.back() == '"') cs = cs.substr(1, cs.size() - 2);
        if (!iequals(cs, "utf-8") && !iequals(cs, "utf8")) return false;
    }
    return true;
}

}  // namespace

std::string channel_source(std::string_view name) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string s = "/omnibus/channels/";
    s.reserve(s.size() + name.size());
    for (const char ch : name) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            s += ch;
        } else {
            s += '%';
            s += kHex[c >> 4];
            s += kHex[c & 0x0F];
        }
    }
    return s;
}

kafka::Record to_record(CloudEvent e, std::string key, std::string json_body) {
    kafka::Record r;
    r.key = std::move(key);
    r.value = std::move(json_body);
    r.headers.reserve(8);
    r.headers.push_back({std::string(header::specversion), std::string(kSpecVersion)});
    r.headers.push_back({std::string(header::id), std::move(e.id)});
    r.headers.push_back({std::string(header::source), std::move(e.source)});
    r.headers.push_back({std::string(header::type), std::move(e.type)});
    r.headers.push_back({std::string(header::time), format_rfc3339(e.time)});
    if (e.subject) r.headers.push_back({std::string(header::subject), std::move(*e.subject)});
    if (e.dataschema) r.headers.push_back({std::string(header::dataschema), std::move(*e.dataschema)});
    r.headers.push_back({std::string(header::content_type), std::string(kContentTypeJson)});
    return r;
}

Result<CloudEventView> read_attribute_views(const kafka::Record& record) {
    enum Slot { specversion, id, source, type, time, subject, dataschema, content_type, kSlots };
    static constexpr std::array<std::string_view, kSlots> kNames = {
        header::specversion, header::id,      header::source,     header::type,
        header::time,        header::subject, header::dataschema, header::content_type};
    std::array<const kafka::Header*, kSlots> found{};

    for (const kafka::Header& h : record.headers) {
        for (std::size_t s = 0; s < kSlots; ++s) {
            if (h.name != kNames[s]) continue;
            if (found[s]) return header_error(ErrorCode::bad_header, h.name, "duplicated");
            found[s] = &h;
            break;
        }
    }
    for (const Slot s : {specversion, content_type, id, source, type, time})
        if (!found[s]) return header_error(ErrorCode::missing_header, kNames[s], "missing");

    if (found[specversion]->value != kSpecVersion)
        return header_error(ErrorCode::bad_header, kNames[specversion],
                            "expected \"1.0\", got " + quoted(found[specversion]->value));
    if (!is_json_content_type(found[content_type]->value))
        return header_error(ErrorCode::bad_header, kNames[content_type],
                            "expected application/json, got " + quoted(found[content_type]->value));
    for (const Slot s : {id, source, type, subject, dataschema}) {
        if (!found[s]) continue;
        const std::string& v = found[s]->value;
        if (v.empty()) return header_error(ErrorCode::bad_header, kNames[s], "empty");
        if (!is_printable_utf8(v))
            return header_error(ErrorCode::bad_header, kNames[s], "not printable UTF-8: " + quoted(v));
    }
    const auto t = parse_rfc3339(found[time]->value);
    if (!t)
        return header_error(ErrorCode::bad_header, kNames[time],
                            "not an RFC 3339 date-time: " + quoted(found[time]->value));

    CloudEventView e;
    e.id = found[id]->value;
    e.source = found[source]->value;
    e.type = found[type]->value;
    e.time = *t;
    if (found[subject]) e.subject = found[subject]->value;
    if (found[dataschema]) e.dataschema = found[dataschema]->value;
    return e;
}

Result<CloudEvent> read_attributes(const kafka::Record& record) {
    auto v = read_attribute_views(record);
    if (!v) return v.error();
    CloudEvent e;
    e.id = v->id;
    e.source = v->source;
    e.type = v->type;
    e.time = v->time;
    if (v->subject) e.subject = std::string(*v->subject);
    if (v->dataschema) e.dataschema = std::string(*v->dataschema);
    return e;
}

Error body_error(const json::ParseError& e) {
    ErrorCode code = ErrorCode::bad_json;
    switch (e.kind) {
        case json::ParseError::Kind::too_large: code = ErrorCode::too_large; break;
        case json::ParseError::Kind::bad_json: code = ErrorCode::bad_json; break;
        case json::ParseError::Kind::bad_utf8: code = ErrorCode::bad_utf8; break;
        case json::ParseError::Kind::too_deep: code = ErrorCode::too_deep; break;
    }
    return Error{code, e.path.empty() ? std::string("body") : e.path, e.message};
}

Result<CloudEvent> read_event(const kafka::Record& record, json::ParsedDocument& out, const DecodeOptions& options) {
    auto attrs = read_attributes(record);
    if (!attrs) return attrs;
    json::ParseError pe;
    if (!json::parse(record.value, out, json::Limits{options.max_body_bytes, options.max_depth}, &pe))
        return body_error(pe);
    return attrs;
}

}  // namespace omnibus::envelope
