// Envelopes built in code for the envelope tests: one with every field set, one
// with only the required ones.
#pragma once

#include <string>

#include "envelope/envelope.h"

namespace omnibus::envelope::testing {

inline Timestamp at(const char* rfc3339) { return parse_rfc3339(rfc3339).value(); }

inline json::RawJson raw(const char* text) { return json::RawJson::parse(text).value(); }

// Only what the contract requires of an inbound message.
inline Envelope minimal_envelope() {
    Envelope e;
    e.id = "0190a6e2-3b4c-7d5e-8f60-718293a4b5c6";
    e.channel = {"whatsapp", "whatsapp-eu"};
    e.direction = Direction::inbound;
    e.sender.id = "whatsapp:15551234567";
    e.content.type = ContentType::text;
    e.received_at = at("2024-05-01T12:34:56.789Z");
    e.platform = Platform{"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdCRDU3", std::nullopt, std::nullopt};
    return e;
}

// Every field of the contract set, text in several scripts.
inline Envelope full_envelope() {
    Envelope e = minimal_envelope();
    e.sender.display_name = "María José 李 🌸";
    e.sender.identities = {"phone:+15551234567", "shop:C-1042"};
    e.sender.verified_claims = VerifiedClaims{"C-1042", "maria@example.com", "+15551234567"};
    e.recipient = Participant{"whatsapp:15550001111", "Example Shop", {}, std::nullopt};
    e.content.type = ContentType::image;
    e.content.subject = "Order #1042";
    e.content.text = "Hola, ¿dónde está mi pedido #1042? 我的订单在哪里？ أين طلبي؟ 📦🙏";
    e.content.attachments = {
        Attachment{AttachmentType::image, "https://cdn.example.com/m/1.jpg", "1234567890", "image/jpeg", "box.jpg",
                   48213, "the box arrived damaged",
                   "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
        Attachment{AttachmentType::document, std::nullopt, "media-77", "application/pdf", "invoice.pdf",
                   std::nullopt, std::nullopt, std::nullopt},
    };
    e.content.location = Location{48.8566, 2.3522, "Louvre", "Rue de Rivoli, 75001 Paris"};
    e.content.reply_to = "wamid.PREVIOUS";
    e.platform->timestamp = at("2024-05-01T12:34:55.000Z");
    e.platform->payload = raw(R"({"from":"15551234567","id":"wamid.X","timestamp":"1714566895","type":"image",)"
                              R"("image":{"id":"1234567890","mime_type":"image/jpeg"},"big":12345678901234,)"
                              R"("ratio":0.1,"neg":-3,"ok":true,"none":null,"list":[1,"two",[3]]})");
    e.customer_id = "cus_01HX8Z";
    e.conversation_id = "conv_01HX90";
    e.language = "es";
    e.language_confidence = 0.93;
    e.intent = Intent{"order_status", 0.87, "keywords:where_is_my_order"};
    e.entities = {{"order_number", "1042"}, {"email", "maria@example.com"}};
    e.sentiment = Sentiment{SentimentLabel::negative, -0.62};
    e.route = Route{RouteTarget::human, "angry_customer", 7, "es-support", {"vip", "angry"}};
    e.context = {
        ContextEntry{"0190a6e0-0000-7000-8000-000000000001", Direction::inbound, "whatsapp-eu", "Hi",
                     at("2024-05-01T12:30:00.000Z"), "customer"},
        ContextEntry{"0190a6e0-0000-7000-8000-000000000002", Direction::outbound, std::nullopt, std::nullopt,
                     at("2024-05-01T12:30:02.500Z"), std::nullopt},
    };
    return e;
}

// A typical inbound WhatsApp text message, ~500-byte body with the platform's
// payload for it: the benchmark's.
inline Envelope typical_text_envelope() {
    Envelope e = minimal_envelope();
    e.sender.display_name = "Maria Silva";
    e.sender.identities = {"phone:+15551234567"};
    e.content.text = "Hi, where is my order #1042? Tracking still says label created.";
    e.platform->timestamp = at("2024-05-01T12:34:55.000Z");
    e.platform->payload = raw(R"({"from":"15551234567","id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdCRDU3",)"
                              R"("timestamp":"1714566895","type":"text",)"
                              R"("text":{"body":"Hi, where is my order #1042? Tracking still says label created."}})");
    return e;
}

}  // namespace omnibus::envelope::testing
