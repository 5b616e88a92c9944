// Writes delivery status events (see delivery_status.h for the shape).
#include "connectors/whatsapp/delivery_status.h"

#include <rapidjson/stringbuffer.h>

namespace omnibus::connectors {
namespace {

using json::write_key;
using json::write_string;

void write_time(json::Writer& w, std::string_view key, envelope::Timestamp t) {
    char buf[envelope::kTimestampLength];
    envelope::format_rfc3339(t, buf);
    write_key(w, key);
    w.String(buf, static_cast<rapidjson::SizeType>(sizeof buf));
}

void write_opt(json::Writer& w, std::string_view key, const std::optional<std::string>& v) {
    if (!v) return;
    write_key(w, key);
    write_string(w, *v);
}

void write_channel(json::Writer& w, const envelope::Channel& c) {
    write_key(w, "channel");
    w.StartObject();
    write_key(w, "type");
    write_string(w, c.type);
    write_key(w, "name");
    write_string(w, c.name);
    w.EndObject();
}

}  // namespace

envelope::CloudEvent attributes_of(const DeliveryStatus& s) {
    envelope::CloudEvent ce;
    ce.id = s.id;
    ce.source = envelope::channel_source(s.channel.name);
    ce.type = std::string(envelope::event_type::message_status);
    ce.time = s.timestamp.value_or(s.received_at);
    ce.subject = s.message_id;
    return ce;
}

std::string encode_body(const DeliveryStatus& s) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    write_key(w, "schema_version");
    w.Int(kDeliveryStatusSchemaVersion);
    write_key(w, "id");
    write_string(w, s.id);
    write_channel(w, s.channel);
    write_key(w, "message_id");
    write_string(w, s.message_id);
    write_key(w, "status");
    write_string(w, s.status);
    if (s.recipient) {
        write_key(w, "recipient");
        w.StartObject();
        write_key(w, "id");
        write_string(w, s.recipient->id);
        if (!s.recipient->identities.empty()) {
            write_key(w, "identities");
            w.StartArray();
            for (const auto& i : s.recipient->identities) write_string(w, i);
            w.EndArray();
        }
        w.EndObject();
    }
    if (s.timestamp) write_time(w, "timestamp", *s.timestamp);
    write_time(w, "received_at", s.received_at);
    if (!s.errors.empty()) {
        write_key(w, "errors");
        w.StartArray();
        for (const DeliveryError& e : s.errors) {
            w.StartObject();
            write_key(w, "code");
            w.Int64(e.code);
            write_opt(w, "title", e.title);
            write_opt(w, "message", e.message);
            write_opt(w, "details", e.details);
            write_opt(w, "href", e.href);
            write_key(w, "retryable");
            w.Bool(e.retryable);
            w.EndObject();
        }
        w.EndArray();
    }
    if (s.conversation) {
        write_key(w, "conversation");
        w.StartObject();
        write_opt(w, "id", s.conversation->id);
        write_opt(w, "origin", s.conversation->origin);
        if (s.conversation->expires_at) write_time(w, "expires_at", *s.conversation->expires_at);
        w.EndObject();
    }
    if (s.pricing) {
        write_key(w, "pricing");
        w.StartObject();
        if (s.pricing->billable) {
            write_key(w, "billable");
            w.Bool(*s.pricing->billable);
        }
        write_opt(w, "model", s.pricing->model);
        write_opt(w, "category", s.pricing->category);
        write_opt(w, "type", s.pricing->type);
        w.EndObject();
    }
    write_opt(w, "callback_data", s.callback_data);
    if (s.payload) {
        write_key(w, "payload");
        json::write_raw(w, s.payload->text());
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

kafka::Record encode(const ChannelUpdate& u) {
    rapidjson::StringBuffer buf;
    json::Writer w(buf);
    w.StartObject();
    write_key(w, "schema_version");
    w.Int(1);
    write_key(w, "id");
    write_string(w, u.id);
    write_channel(w, u.channel);
    write_key(w, "field");
    write_string(w, u.field);
    write_opt(w, "account_id", u.account_id);
    write_time(w, "received_at", u.received_at);
    write_key(w, "payload");
    json::write_raw(w, u.payload.text());
    w.EndObject();
    envelope::CloudEvent ce;
    ce.id = u.id;
    ce.source = envelope::channel_source(u.channel.name);
    ce.type = std::string(envelope::event_type::channel_update);
    ce.time = u.received_at;
    ce.subject = u.field;
    return envelope::to_record(std::move(ce), u.channel.name, std::string(buf.GetString(), buf.GetSize()));
}

kafka::Record encode(const DeliveryStatus& s) {
    std::string key = s.recipient ? s.recipient->id : s.message_id;
    return envelope::to_record(attributes_of(s), std::move(key), encode_body(s));
}

}  // namespace omnibus::connectors
