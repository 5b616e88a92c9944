// History commands on the pipeline's customer topic (see history_commands.h).
#include "pipeline/history/history_commands.h"

#include "envelope/cloudevent.h"
#include "envelope/id.h"
#include "envelope/json.h"

namespace omnibus::pipeline::history {
namespace {

using envelope::Error;
using envelope::ErrorCode;

kafka::Record command(const std::string& topic, std::string_view type, std::string key, std::string body,
                      std::string_view source) {
    envelope::CloudEvent ce{envelope::new_id(), std::string(source), std::string(type), envelope::now_ms(),
                            std::nullopt, std::nullopt};
    kafka::Record r = envelope::to_record(std::move(ce), std::move(key), std::move(body));
    r.topic = topic;
    return r;
}

const json::Value* member(const json::Value& o, const char* name) {
    auto it = o.FindMember(name);
    return it == o.MemberEnd() ? nullptr : &it->value;
}

envelope::Result<std::string> id_field(const json::Value& o, const char* name) {
    const json::Value* v = member(o, name);
    if (!v) return Error{ErrorCode::missing_field, name, "missing"};
    if (!v->IsString()) return Error{ErrorCode::wrong_type, name, "expected a string"};
    std::string_view s = json::view(*v);
    if (s.empty() || s.size() > 128 || s.find('/') != std::string_view::npos)
        return Error{ErrorCode::bad_value, name, "expected a customer id"};
    return std::string(s);
}

// Parses `body` into doc; an error when it is not one JSON object.
envelope::Status parse_object(std::string_view body, json::ParsedDocument& doc) {
    json::ParseError pe;
    if (!json::parse(body, doc, json::Limits{4 << 20, 8}, &pe))
        return Error{pe.kind == json::ParseError::Kind::too_large ? ErrorCode::too_large : ErrorCode::bad_json, "body",
                     pe.message};
    if (!doc.doc().IsObject()) return Error{ErrorCode::wrong_type, "body", "expected an object"};
    return {};
}

std::string two_ids(const char* a, std::string_view va, const char* b, std::string_view vb) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, a);
    json::write_string(w, va);
    if (b) {
        json::write_key(w, b);
        json::write_string(w, vb);
    }
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

}  // namespace

kafka::Record move_record(const std::string& topic, const MoveCommand& c, std::string_view source) {
    return command(topic, kMoveType, c.from, two_ids("from", c.from, "into", c.into), source);
}

kafka::Record erase_record(const std::string& topic, const EraseCommand& c, std::string_view source) {
    return command(topic, kEraseType, c.customer, two_ids("customer", c.customer, nullptr, {}), source);
}

std::vector<kafka::Record> import_records(const std::string& topic, std::string_view from, std::string_view into,
                                          const std::vector<HistoryEntry>& entries, std::string_view source) {
    std::vector<kafka::Record> out;
    std::size_t i = 0;
    do {
        rapidjson::StringBuffer buf;
        json::Writer w(buf);
        w.StartObject();
        json::write_key(w, "customer");
        json::write_string(w, into);
        json::write_key(w, "from");
        json::write_string(w, from);
        json::write_key(w, "entries");
        w.StartArray();
        std::size_t in_this = 0;
        for (; i < entries.size(); ++i) {
            std::string e = encode(entries[i]);
            if (in_this > 0 && buf.GetSize() + e.size() + 128 > kMaxImportBytes) break;
            w.StartObject();
            json::write_key(w, "at");
            w.Int64(entries[i].at_ms);
            json::write_key(w, "id");
            json::write_string(w, entries[i].id);
            json::write_key(w, "e");
            json::write_raw(w, e);
            w.EndObject();
            ++in_this;
        }
        w.EndArray();
        w.EndObject();
        out.push_back(command(topic, kImportType, std::string(into), {buf.GetString(), buf.GetSize()}, source));
    } while (i < entries.size());
    return out;
}

envelope::Result<MoveCommand> decode_move(std::string_view body) {
    json::LocalDocument<1024> doc;
    if (auto st = parse_object(body, doc); !st.ok()) return st.error();
    auto from = id_field(doc.doc(), "from");
    if (!from.ok()) return from.error();
    auto into = id_field(doc.doc(), "into");
    if (!into.ok()) return into.error();
    if (*from == *into) return Error{ErrorCode::bad_value, "into", "a customer cannot move into itself"};
    return MoveCommand{std::move(from).value(), std::move(into).value()};
}

envelope::Result<EraseCommand> decode_erase(std::string_view body) {
    json::LocalDocument<1024> doc;
    if (auto st = parse_object(body, doc); !st.ok()) return st.error();
    auto c = id_field(doc.doc(), "customer");
    if (!c.ok()) return c.error();
    return EraseCommand{std::move(c).value()};
}

envelope::Result<HandoffCommand> decode_handoff(std::string_view body, bool takeover) {
    json::LocalDocument<1024> doc;
    if (auto st = parse_object(body, doc); !st.ok()) return st.error();
    const json::Value& o = doc.doc();
    HandoffCommand c;
    c.takeover = takeover;
    auto customer = id_field(o, "customer_id");
    if (!customer.ok()) return customer.error();
    c.customer = std::move(customer).value();
    const json::Value* agent = member(o, "agent");
    if (!agent) return Error{ErrorCode::missing_field, "agent", "missing"};
    if (!agent->IsString() || agent->GetStringLength() == 0 || agent->GetStringLength() > 128 ||
        !json::is_valid_utf8(json::view(*agent)))
        return Error{ErrorCode::bad_value, "agent", "expected the agent's id, 1 to 128 bytes of UTF-8"};
    c.agent = std::string(json::view(*agent));
    if (const json::Value* conv = member(o, "conversation_id")) {
        auto id = id_field(o, "conversation_id");
        if (!id.ok()) return id.error();
        (void)conv;
        c.conversation = std::move(id).value();
    }
    return c;
}

kafka::Record handoff_record(const std::string& topic, const HandoffCommand& c, std::string_view source) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    json::write_key(w, "customer_id");
    json::write_string(w, c.customer);
    json::write_key(w, "agent");
    json::write_string(w, c.agent);
    if (c.conversation) {
        json::write_key(w, "conversation_id");
        json::write_string(w, *c.conversation);
    }
    w.EndObject();
    return command(topic, c.takeover ? kTakeoverType : kReleaseType,
                   c.customer, {buf.GetString(), buf.GetSize()}, source);
}

envelope::Result<ImportCommand> decode_import(std::string_view body) {
    json::LocalDocument<16384> doc;
    if (auto st = parse_object(body, doc); !st.ok()) return st.error();
    const json::Value& o = doc.doc();
    ImportCommand c;
    auto customer = id_field(o, "customer");
    if (!customer.ok()) return customer.error();
    c.customer = std::move(customer).value();
    auto from = id_field(o, "from");
    if (!from.ok()) return from.error();
    c.from = std::move(from).value();
    const json::Value* entries = member(o, "entries");
    if (!entries) return Error{ErrorCode::missing_field, "entries", "missing"};
    if (!entries->IsArray()) return Error{ErrorCode::wrong_type, "entries", "expected an array"};
    std::size_t i = 0;
    for (const auto& item : entries->GetArray()) {
        const std::string where = "entries[" + std::to_string(i++) + "]";
        if (!item.IsObject()) return Error{ErrorCode::wrong_type, where, "expected an object"};
        const json::Value* at = member(item, "at");
        const json::Value* id = member(item, "id");
        const json::Value* e = member(item, "e");
        if (!at || !at->IsInt64() || at->GetInt64() < 0)
            return Error{ErrorCode::bad_value, where + ".at", "expected milliseconds since the epoch"};
        if (!id || !id->IsString() || id->GetStringLength() == 0 || id->GetStringLength() > 128 ||
            json::view(*id).find('/') != std::string_view::npos)
            return Error{ErrorCode::bad_value, where + ".id", "expected a message id"};
        if (!e || !e->IsObject()) return Error{ErrorCode::wrong_type, where + ".e", "expected an object"};
        rapidjson::StringBuffer buf;
        json::Writer w(buf);
        e->Accept(w);
        auto entry = decode_entry(entry_key(c.customer, at->GetInt64(), json::view(*id)),
                                  std::string_view(buf.GetString(), buf.GetSize()));
        if (!entry) return Error{ErrorCode::bad_value, where, "not a history entry"};
        c.entries.push_back(std::move(*entry));
    }
    return c;
}

}  // namespace omnibus::pipeline::history
