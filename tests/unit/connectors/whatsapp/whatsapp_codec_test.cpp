// Webhook bodies → envelopes: every message type of the Cloud API, sender and
// recipient identities, the platform payload, several events per POST, and
// what a malformed message or body becomes.
#include <catch2/catch.hpp>

#include <algorithm>

#include "connectors/whatsapp/whatsapp_codec.h"
#include "whatsapp_test_support.h"

using namespace omnibus;
using namespace omnibus::envelope;
using namespace omnibus::connectors::whatsapp;
using namespace omnibus::connectors::whatsapp::testing;

namespace {

Envelope only_message(const WebhookEvents& ev) {
    REQUIRE(ev.messages.size() == 1);
    CHECK(ev.statuses.empty());
    CHECK(ev.rejected.empty());
    CHECK(ev.degraded.empty());
    return ev.messages[0];
}

// The message object of an envelope's payload (the narrowed `value`).
std::string payload_message(const Envelope& e) {
    json::LocalDocument<> doc;
    REQUIRE(json::parse(e.platform->payload->text(), doc, json::Limits{}, nullptr));
    return json::RawJson::from_value(doc.doc()["messages"][0]).text();
}

bool payload_has(const Envelope& e, const std::string& fragment) {
    return e.platform->payload->text().find(fragment) != std::string::npos;
}

}  // namespace

TEST_CASE("a text message: sender, recipient, content, platform id, time and payload") {
    const WebhookEvents ev = parse_sample("text");
    const Envelope& e = only_message(ev);

    CHECK(e.schema_version == 1);
    CHECK(e.channel == Channel{"whatsapp", "whatsapp-eu"});
    CHECK(e.direction == Direction::inbound);
    CHECK(e.sender.id == "whatsapp:16505551234");
    CHECK(e.sender.display_name == "Maria Silva");
    CHECK(e.sender.identities == std::vector<std::string>{"phone:+16505551234"});
    REQUIRE(e.sender.verified_claims);
    CHECK(e.sender.verified_claims->phone == "+16505551234");
    REQUIRE(e.recipient);
    CHECK(e.recipient->id == "whatsapp_business:106540352242922");
    CHECK(e.recipient->identities == std::vector<std::string>{"phone:+16505553333"});
    CHECK(e.content.type == ContentType::text);
    CHECK(e.content.text ==
          "Hi! I ordered the blue sneakers last week (order 1042) and tracking still says label created. Can you "
          "tell me when it will ship?");
    CHECK(e.content.attachments.empty());
    CHECK_FALSE(e.content.reply_to);
    CHECK(e.received_at == kReceived);
    REQUIRE(e.platform);
    CHECK(e.platform->message_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDU3MDVBMEQzNjQ3QjQA");
    CHECK(e.platform->timestamp == at("2024-05-01T12:34:55Z"));
    CHECK(e.id == message_event_id(e.platform->message_id, at("2024-05-01T12:34:55Z")));
    CHECK(id_time(e.id) == at("2024-05-01T12:34:55Z"));

    // The payload is the webhook's `value` narrowed to this message.
    CHECK(e.platform->payload->text() == compact(R"({
      "messaging_product": "whatsapp",
      "metadata": {"display_phone_number": "16505553333", "phone_number_id": "106540352242922"},
      "contacts": [{"profile": {"name": "Maria Silva"}, "wa_id": "16505551234"}],
      "messages": [{"from": "16505551234", "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDU3MDVBMEQzNjQ3QjQA",
                    "timestamp": "1714566895", "type": "text",
                    "text": {"body": "Hi! I ordered the blue sneakers last week (order 1042) and tracking still says label created. Can you tell me when it will ship?"}}]
    })"));
}

TEST_CASE("the encoded text envelope is exactly the committed golden record body") {
    const WebhookEvents ev = parse_sample("text");
    const std::string golden = read_file(kSource / "tests/data/whatsapp/expected/text.envelope.json");
    CHECK(encode_body(ev.messages.at(0)) == compact(golden));
    const kafka::Record r = encode(ev.messages[0], ev.messages[0].sender.id);
    CHECK(r.key == "whatsapp:16505551234");
    CHECK(r.header(header::source)->value == "/omnibus/channels/whatsapp-eu");
    CHECK(r.header(header::type)->value == event_type::message_inbound);
}

TEST_CASE("every sample parses, and every envelope validates and survives the envelope codec") {
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(kSource / "tests/data/whatsapp"))
        if (f.is_regular_file() && f.path().extension() == ".json") files.push_back(f.path());
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() >= 25);
    for (const auto& f : files) {
        INFO(f.filename().string());
        auto r = codec().parse(read_file(f), kReceived);
        REQUIRE(r.ok());
        CHECK(r->rejected.empty());
        CHECK(r->degraded.empty());
        CHECK(r->messages.size() + r->statuses.size() + r->other.size() >= 1);
        for (const Envelope& e : r->messages) {
            INFO(e.platform->message_id);
            const Status st = validate(e);
            INFO((st ? std::string() : st.error().to_string()));
            CHECK(st.ok());
            auto back = decode(encode(e, e.sender.id));
            REQUIRE(back.ok());
            CHECK(*back == e);
        }
    }
}

TEST_CASE("a reply keeps context.id as reply_to, and a click-to-WhatsApp referral stays in the payload") {
    const Envelope& reply = only_message(parse_sample("text_reply"));
    CHECK(reply.content.type == ContentType::text);
    CHECK(reply.content.text == "Yes, size 39 please");
    CHECK(reply.content.reply_to == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");

    const WebhookEvents ev = parse_sample("text_referral");
    const Envelope& ad = only_message(ev);
    CHECK(ad.content.text == "Is this still available?");
    CHECK(payload_has(ad, R"("referral":{"source_url":"https://fb.me/3cr4Wqqkv")"));
    CHECK(payload_has(ad, R"("ctwa_clid":"ARAkLkA8rmlFeiCktEJQ)"));
}

TEST_CASE("media messages become attachments with media id, MIME type, hex sha256, caption and filename") {
    struct Case {
        const char* sample;
        ContentType type;
        AttachmentType attachment;
        const char* media_id;
        const char* mime;
        const char* sha256;
        std::optional<std::string> caption;
        std::optional<std::string> filename;
    };
    const Case cases[] = {
        {"image", ContentType::image, AttachmentType::image, "1003383421387256", "image/jpeg",
         "6105d6cc76af400325e94d588ce511be5bfdbb73b437dc51eca43917d7a43e3d", "This is what arrived", std::nullopt},
        {"audio", ContentType::audio, AttachmentType::audio, "1228363891528153", "audio/ogg; codecs=opus",
         "6ed8919ce20490a5e3ad8630a4fab69475297abd07db73918dd5f36fcfaeb11b", std::nullopt, std::nullopt},
        {"video", ContentType::video, AttachmentType::video, "2210534719288764", "video/mp4",
         "0cab1c9617404faf2b24e221e189ca5945813e14d3f766345b09ca13bbe28ffc", "The box was crushed", std::nullopt},
        {"document", ContentType::document, AttachmentType::document, "1458032691496893", "application/pdf",
         "43cc23fa52b87b4cc1d02b5b114154151d6adddb17c9fddc06b027fa99e24008", "My invoice", "invoice-1042.pdf"},
        {"sticker", ContentType::sticker, AttachmentType::sticker, "946093427196540", "image/webp",
         "57c4b13a4c7335e72f1669e0506e99208df1da050c125da678b23ebb55bf4c61", std::nullopt, std::nullopt},
    };
    for (const Case& c : cases) {
        INFO(c.sample);
        const WebhookEvents ev = parse_sample(c.sample);
        const Envelope& e = only_message(ev);
        CHECK(e.content.type == c.type);
        CHECK(e.content.text == c.caption);  // the caption is also the text
        REQUIRE(e.content.attachments.size() == 1);
        const Attachment& a = e.content.attachments[0];
        CHECK(a.type == c.attachment);
        CHECK(a.media_id == c.media_id);
        CHECK_FALSE(a.url);
        CHECK(a.mime_type == c.mime);
        CHECK(a.sha256 == c.sha256);
        CHECK(a.caption == c.caption);
        CHECK(a.filename == c.filename);
    }
    CHECK(payload_has(only_message(parse_sample("audio")), R"("voice":true)"));
    CHECK(payload_has(only_message(parse_sample("sticker")), R"("animated":false)"));
}

TEST_CASE("location, contacts, interactive replies, template buttons, reactions, orders and system messages") {
    SECTION("location") {
        const Envelope& e = only_message(parse_sample("location"));
        CHECK(e.sender.id == "whatsapp:5511987654321");
        CHECK(e.sender.display_name == "João Pereira");
        CHECK(e.sender.identities == std::vector<std::string>{"phone:+5511987654321"});
        CHECK(e.content.type == ContentType::location);
        REQUIRE(e.content.location);
        CHECK(e.content.location->lat == -23.561414);
        CHECK(e.content.location->lon == -46.655881);
        CHECK(e.content.location->name == "MASP");
        CHECK(e.content.location->address == "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200");
    }
    SECTION("contacts: a readable summary, the card in the payload") {
        const Envelope& e = only_message(parse_sample("contacts"));
        CHECK(e.content.type == ContentType::contacts);
        CHECK(e.content.text == "Barbara J. Johnson: +19405551234, +16505551234");
        CHECK(payload_has(e, R"("emails":[{"email":"bjohnson@example.com","type":"WORK"}])"));
    }
    SECTION("interactive button_reply / list_reply: the title tapped; nfm_reply: the body") {
        const Envelope& b = only_message(parse_sample("interactive_button_reply"));
        CHECK(b.content.type == ContentType::interactive);
        CHECK(b.content.text == "Track my order");
        CHECK(b.content.reply_to == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJEQjUzNkI5NjE2QjJDQkQ2MDIA");
        CHECK(payload_has(b, R"("button_reply":{"id":"track-order")"));

        const Envelope& l = only_message(parse_sample("interactive_list_reply"));
        CHECK(l.content.type == ContentType::interactive);
        CHECK(l.content.text == "Return a damaged item");
        CHECK(payload_has(l, R"("id":"return-damaged")"));

        const Envelope& f = only_message(parse_sample("interactive_nfm_reply"));
        CHECK(f.content.type == ContentType::interactive);
        CHECK(f.content.text == "Sent");
        CHECK(payload_has(f, R"(\"flow_token\":\"return-1042\")"));
    }
    SECTION("button (template quick reply)") {
        const Envelope& e = only_message(parse_sample("button"));
        CHECK(e.content.type == ContentType::button);
        CHECK(e.content.text == "Stop promotions");
        CHECK(e.content.reply_to == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJCMDFFQzZGNjUxRDE3Q0ZFNjEA");
        CHECK(payload_has(e, R"("payload":"STOP_PROMOTIONS")"));
    }
    SECTION("reaction: the emoji, and the message reacted to as reply_to") {
        const Envelope& e = only_message(parse_sample("reaction"));
        CHECK(e.content.type == ContentType::reaction);
        CHECK(e.content.text == "👍");
        CHECK(e.content.reply_to == "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI1NTA0NkQ2RUVCMDdDRkJCMzEA");
    }
    SECTION("order: its text; the items in the payload") {
        const Envelope& e = only_message(parse_sample("order"));
        CHECK(e.sender.identities == std::vector<std::string>{"phone:+4915123456789"});
        CHECK(e.content.type == ContentType::order);
        CHECK(e.content.text == "Can you ship these together?");
        CHECK(payload_has(e, R"("product_retailer_id":"SNK-BLUE-39","quantity":1,"item_price":89.9)"));
    }
    SECTION("system: no contacts array, the body as text") {
        const Envelope& e = only_message(parse_sample("system"));
        CHECK(e.content.type == ContentType::system);
        CHECK(e.content.text == "User Maria Silva changed from 16505551234 to 16505559876");
        CHECK_FALSE(e.sender.display_name);
        CHECK(payload_has(e, R"("type":"user_changed_number")"));
        CHECK_FALSE(payload_has(e, "contacts"));
    }
    SECTION("unsupported: WhatsApp's own type, with its errors in the payload") {
        const Envelope& e = only_message(parse_sample("unsupported"));
        CHECK(e.content.type == ContentType::unsupported);
        CHECK_FALSE(e.content.text);
        CHECK(payload_has(e, R"("code":131051)"));
    }
}

TEST_CASE("a removed reaction has no text, and request_welcome is a system message") {
    std::string body = sample("reaction");
    body.replace(body.find(R"("emoji": "👍")"), std::string(R"("emoji": "👍")").size(), R"("emoji": "")");
    auto removed = codec().parse(body, kReceived);
    REQUIRE(removed.ok());
    CHECK(removed->messages.at(0).content.type == ContentType::reaction);
    CHECK_FALSE(removed->messages[0].content.text);

    auto welcome = codec().parse(
        R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{
            "messaging_product":"whatsapp","metadata":{"display_phone_number":"16505553333","phone_number_id":"106540352242922"},
            "contacts":[{"profile":{"name":"Maria Silva"},"wa_id":"16505551234"}],
            "messages":[{"from":"16505551234","id":"wamid.welcome","timestamp":"1714566895","type":"request_welcome"}]}}]}]})",
        kReceived);
    REQUIRE(welcome.ok());
    CHECK(welcome->messages.at(0).content.type == ContentType::system);
    CHECK(welcome->degraded.empty());
}

TEST_CASE("several entries, changes, messages and statuses in one POST are several events, in order") {
    const WebhookEvents ev = parse_sample("multi");
    REQUIRE(ev.messages.size() == 3);
    REQUIRE(ev.statuses.size() == 2);
    CHECK(ev.rejected.empty());

    CHECK(ev.messages[0].platform->message_id == "wamid.multi.1");
    CHECK(ev.messages[0].sender.display_name == "Maria Silva");
    CHECK(ev.messages[1].platform->message_id == "wamid.multi.2");
    CHECK(ev.messages[1].sender.id == "whatsapp:5511987654321");
    CHECK(ev.messages[1].sender.display_name == "João Pereira");  // its own contact, not the first one
    CHECK(ev.messages[1].content.text == "segundo");
    CHECK(ev.messages[2].platform->message_id == "wamid.multi.3");
    CHECK(ev.messages[2].content.type == ContentType::image);
    CHECK(ev.messages[2].sender.display_name == "Jonas Becker");
    // Each payload holds only its own message and contact.
    CHECK(payload_message(ev.messages[1]).find("segundo") != std::string::npos);
    CHECK_FALSE(payload_has(ev.messages[1], "Maria Silva"));

    CHECK(ev.statuses[0].status == "delivered");
    CHECK(ev.statuses[1].status == "read");
    CHECK(ev.statuses[0].id != ev.statuses[1].id);

    REQUIRE(ev.other.size() == 1);
    CHECK(ev.other[0].field == "message_template_status_update");
    CHECK(ev.other[0].waba_id == "102290129340399");
    CHECK(ev.other[0].value.text().find(R"("event":"APPROVED")") != std::string::npos);
}

TEST_CASE("business-scoped user ids and usernames: kept as identities and in the payload") {
    SECTION("username adopted, phone number withheld: the BSUID is the sender") {
        const Envelope& e = only_message(parse_sample("bsuid_username"));
        CHECK(e.sender.id == "whatsapp_bsuid:BR.1502576394655843");
        CHECK(e.sender.identities == std::vector<std::string>{"whatsapp_bsuid:BR.ENT.11815799212886844830"});
        CHECK_FALSE(e.sender.verified_claims);
        CHECK(e.sender.display_name == "Ana");
        CHECK(payload_has(e, R"("username":"@ana.lima")"));
    }
    SECTION("phone number and BSUID") {
        const Envelope& e = only_message(parse_sample("bsuid_with_phone"));
        CHECK(e.sender.id == "whatsapp:919810218674");
        CHECK(e.sender.identities ==
              std::vector<std::string>{"phone:+919810218674", "whatsapp_bsuid:IN.1410018717833190"});
        CHECK(e.sender.display_name == "Krish Thakur");
    }
}

TEST_CASE("numbers libphonenumber calls invalid are never guessed: only whatsapp:<wa_id> is kept") {
    std::string body = sample("text");
    for (std::size_t p; (p = body.find("16505551234")) != std::string::npos;) body.replace(p, 11, "15551234567");
    for (std::size_t p; (p = body.find("16505553333")) != std::string::npos;) body.replace(p, 11, "15550783881");
    auto r = codec().parse(body, kReceived);
    REQUIRE(r.ok());
    const Envelope& e = r->messages.at(0);
    CHECK(e.sender.id == "whatsapp:15551234567");
    CHECK(e.sender.identities.empty());
    CHECK_FALSE(e.sender.verified_claims);
    CHECK(e.recipient->identities.empty());
    CHECK(validate(e).ok());
}

TEST_CASE("ids are UUIDv7, deterministic per platform message id, ordered by the platform time") {
    const WebhookEvents a = parse_sample("multi");
    auto later = codec().parse(sample("multi"), kReceived + std::chrono::hours(30));  // Meta's retry, a day later
    REQUIRE(later.ok());
    for (std::size_t i = 0; i < a.messages.size(); ++i) CHECK(later->messages[i].id == a.messages[i].id);
    for (std::size_t i = 0; i < a.statuses.size(); ++i) CHECK(later->statuses[i].id == a.statuses[i].id);

    const std::string id = a.messages[0].id;
    REQUIRE(id.size() == kIdLength);
    CHECK(id[14] == '7');                                                    // version
    CHECK(std::string_view("89ab").find(id[19]) != std::string_view::npos);  // variant
    CHECK(id_time(id) == at("2024-05-01T12:34:55Z"));
    CHECK(a.messages[0].id < a.messages[1].id);  // one second later on the platform

    const Timestamp t = at("2024-05-01T12:00:00Z");
    CHECK(message_event_id("wamid.A", t) == message_event_id("wamid.A", t));
    CHECK(message_event_id("wamid.A", t) != message_event_id("wamid.B", t));
    CHECK(status_event_id("wamid.A", "sent", t) != status_event_id("wamid.A", "delivered", t));
    CHECK(status_event_id("wamid.A", "sent", t) != message_event_id("wamid.A", t));
    // Pinned: ids must not change across releases, or redeliveries would not dedup.
    CHECK(message_event_id("wamid.A", t) == "018f3406-9e00-7fcf-a1ac-737b3209fce1");
}
