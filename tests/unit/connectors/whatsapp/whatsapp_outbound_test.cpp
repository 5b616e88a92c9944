// Reply envelope → Graph API requests, text splitting, the 24-hour window
// decision and retry delays.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include "connectors/whatsapp/whatsapp_outbound.h"

using namespace omnibus;
using namespace omnibus::connectors::whatsapp;
using namespace std::chrono_literals;

namespace {

envelope::Envelope reply(std::string text) {
    envelope::Envelope e;
    e.id = "018f3a4c-8e21-7b3a-9c4d-2f6e8a1b3c5e";
    e.channel = {"whatsapp", "whatsapp-eu"};
    e.direction = envelope::Direction::outbound;
    e.sender.id = "whatsapp:15550001111";
    envelope::Participant to;
    to.id = "whatsapp:4915123456789";
    e.recipient = to;
    e.content.type = envelope::ContentType::text;
    if (!text.empty()) e.content.text = std::move(text);
    return e;
}

rapidjson::Document parse_json(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str(), s.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

std::size_t code_points(std::string_view s) {
    std::size_t n = 0;
    for (const char c : s)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

}  // namespace

TEST_CASE("a text reply is one text message with callback data and the reply context") {
    envelope::Envelope e = reply("Your parcel left Shenzhen today 📦");
    e.content.reply_to = "wamid.HBgLNDkxNTEyMzQ1Njc4ORUCABIYFDNBRTlDOA==";
    auto p = plan(e);
    REQUIRE(p);
    CHECK(p->to == "4915123456789");
    REQUIRE(p->requests.size() == 1);
    auto d = parse_json(p->requests[0]);
    CHECK(std::string(d["to"].GetString()) == "4915123456789");
    CHECK(std::string(d["type"].GetString()) == "text");
    CHECK(std::string(d["text"]["body"].GetString()) == "Your parcel left Shenzhen today 📦");
    CHECK(std::string(d["context"]["message_id"].GetString()) == "wamid.HBgLNDkxNTEyMzQ1Njc4ORUCABIYFDNBRTlDOA==");
    CHECK(std::string(d["biz_opaque_callback_data"].GetString()) == e.id);
}

TEST_CASE("the recipient comes from whatsapp identities first, then phone numbers") {
    envelope::Envelope e = reply("hi");
    e.recipient->id = "shop:c-1";
    e.recipient->identities = {"email:ana@example.com", "phone:+4915100000000", "whatsapp:4915199999999"};
    CHECK(recipient_wa_id(e) == "4915199999999");
    e.recipient->identities = {"phone:+4915100000000"};
    CHECK(recipient_wa_id(e) == "4915100000000");
    e.recipient->identities = {"phone:4915100000000", "whatsapp:abc"};
    CHECK_FALSE(recipient_wa_id(e));
    auto p = plan(e);
    REQUIRE_FALSE(p);
    CHECK(p.error().field == "recipient");
    e.recipient.reset();
    CHECK(plan(e).error().code == envelope::ErrorCode::missing_field);
}

TEST_CASE("an erased identity names a service window: whatsapp as recorded, phone numbers as addressed") {
    CHECK(window_wa_id("whatsapp:4915199999999") == "4915199999999");
    CHECK(window_wa_id("whatsapp:abc") == "abc");  // recorded as Meta sent it: forgotten as it is
    CHECK(window_wa_id("phone:+4915100000000") == "4915100000000");
    CHECK_FALSE(window_wa_id("phone:4915100000000"));  // not E.164
    CHECK_FALSE(window_wa_id("phone:+49 151"));
    CHECK_FALSE(window_wa_id("whatsapp:"));
    CHECK_FALSE(window_wa_id("whatsapp_bsuid:US.13491208655302741918"));  // no window is kept for these
    CHECK_FALSE(window_wa_id("email:ana@example.com"));
    CHECK_FALSE(window_wa_id(""));
}

TEST_CASE("long text is split below the limit at line breaks or spaces, never inside a character") {
    std::string para = std::string(3000, 'a') + "\n" + std::string(3500, 'b') + " " + std::string(1000, 'c');
    auto pieces = split_text(para, 4096);
    REQUIRE(pieces.size() == 3);
    CHECK(pieces[0] == std::string(3000, 'a') + "\n");
    CHECK(pieces[1] == std::string(3500, 'b') + " ");
    CHECK(pieces[2] == std::string(1000, 'c'));
    // A space early in the piece is not worth a short message: cut hard.
    pieces = split_text(std::string(100, 'd') + " " + std::string(5000, 'e'), 4096);
    REQUIRE(pieces.size() == 2);
    CHECK(code_points(pieces[0]) == 4096);

    std::string cjk;
    for (int i = 0; i < 5000; ++i) cjk += "转";  // 3 bytes each, no spaces
    pieces = split_text(cjk, 4096);
    REQUIRE(pieces.size() == 2);
    CHECK(code_points(pieces[0]) == 4096);
    CHECK(code_points(pieces[1]) == 904);
    CHECK(pieces[0] + pieces[1] == cjk);

    CHECK(split_text("", 10).empty());
    CHECK(split_text("short", 10) == std::vector<std::string>{"short"});

    auto p = plan(reply(cjk));
    REQUIRE(p);
    CHECK(p->requests.size() == 2);
    // Only the first part answers the customer's message; every part links back.
    for (const auto& r : p->requests) CHECK(parse_json(r)["biz_opaque_callback_data"].GetString() == reply("").id);
}

TEST_CASE("attachments become media messages and the text rides as the first caption") {
    envelope::Envelope e = reply("Here is your invoice");
    e.content.type = envelope::ContentType::document;
    envelope::Attachment voice;
    voice.type = envelope::AttachmentType::audio;
    voice.media_id = "1013859600285441";
    envelope::Attachment pdf;
    pdf.type = envelope::AttachmentType::document;
    pdf.url = "https://shop.example.com/invoices/1042.pdf";
    pdf.filename = "invoice-1042.pdf";
    e.content.attachments = {voice, pdf};
    auto p = plan(e);
    REQUIRE(p);
    REQUIRE(p->requests.size() == 2);
    auto a = parse_json(p->requests[0]);
    CHECK(std::string(a["type"].GetString()) == "audio");
    CHECK(std::string(a["audio"]["id"].GetString()) == "1013859600285441");
    CHECK_FALSE(a["audio"].HasMember("caption"));
    auto d = parse_json(p->requests[1]);
    CHECK(std::string(d["type"].GetString()) == "document");
    CHECK(std::string(d["document"]["link"].GetString()) == pdf.url.value());
    CHECK(std::string(d["document"]["caption"].GetString()) == "Here is your invoice");
    CHECK(std::string(d["document"]["filename"].GetString()) == "invoice-1042.pdf");

    // Only an audio: the text goes first as its own message.
    e.content.attachments = {voice};
    p = plan(e);
    REQUIRE(p);
    REQUIRE(p->requests.size() == 2);
    CHECK(std::string(parse_json(p->requests[0])["type"].GetString()) == "text");
    CHECK(std::string(parse_json(p->requests[1])["type"].GetString()) == "audio");

    // A caption over 1,024 characters: text message, then the image without it.
    envelope::Attachment img;
    img.type = envelope::AttachmentType::image;
    img.url = "https://shop.example.com/p/1.jpg";
    e.content.attachments = {img};
    e.content.text = std::string(1500, 'x');
    p = plan(e);
    REQUIRE(p);
    REQUIRE(p->requests.size() == 2);
    CHECK_FALSE(parse_json(p->requests[1])["image"].HasMember("caption"));
}

TEST_CASE("replies this channel cannot send are refused with the field") {
    envelope::Envelope e = reply("");
    auto p = plan(e);
    REQUIRE_FALSE(p);
    CHECK(p.error().field == "content");

    e = reply("here");
    e.content.type = envelope::ContentType::location;
    e.content.location = envelope::Location{52.5, 13.4, std::nullopt, std::nullopt};
    CHECK(plan(e).error().field == "content.type");

    e = reply("");
    e.content.type = envelope::ContentType::image;
    envelope::Attachment other;
    other.type = envelope::AttachmentType::other;
    other.url = "https://shop.example.com/x.bin";
    e.content.attachments = {other};
    CHECK(plan(e).error().field == "content.attachments[0].type");

    e = reply("hi");
    e.direction = envelope::Direction::inbound;
    CHECK(plan(e).error().field == "direction");
}

TEST_CASE("the closed-window template carries the callback data") {
    auto t = plan_template("4915123456789", "follow_up_v2", "en_US", "env-1");
    REQUIRE(t);
    auto d = parse_json(*t);
    CHECK(std::string(d["type"].GetString()) == "template");
    CHECK(std::string(d["template"]["name"].GetString()) == "follow_up_v2");
    CHECK(std::string(d["template"]["language"]["code"].GetString()) == "en_US");
    CHECK(std::string(d["biz_opaque_callback_data"].GetString()) == "env-1");
}

TEST_CASE("the window is open for 24 hours after the customer's last message") {
    envelope::Envelope e = reply("hi");
    const std::int64_t last = 1'700'000'000'000;
    const std::int64_t expires = last + std::chrono::milliseconds(kServiceWindow).count();
    CHECK(window_state(e, expires, last + 1000) == Window::open);
    CHECK(window_state(e, expires, expires - 1) == Window::open);
    CHECK(window_state(e, expires, expires) == Window::closed);
    CHECK(window_state(e, std::nullopt, last) == Window::unknown);
    e.route = envelope::Route{};
    e.route->flags = {"vip", std::string(kOutsideWindowFlag)};
    CHECK(window_state(e, expires, last + 1000) == Window::closed);
}

TEST_CASE("retry delays double with equal jitter, stay under the cap and honour Retry-After") {
    CHECK(retry_delay(1, 1000ms, 60s, std::nullopt, 0.0) == 500ms);
    CHECK(retry_delay(1, 1000ms, 60s, std::nullopt, 1.0) == 1000ms);
    CHECK(retry_delay(2, 1000ms, 60s, std::nullopt, 0.0) == 1000ms);
    CHECK(retry_delay(3, 1000ms, 60s, std::nullopt, 0.5) == 3000ms);
    CHECK(retry_delay(10, 1000ms, 60s, std::nullopt, 1.0) == 60s);
    CHECK(retry_delay(100, 1000ms, 60s, std::nullopt, 1.0) == 60s);
    CHECK(retry_delay(1, 1000ms, 60s, std::chrono::seconds(30), 0.0) == 30s);
    CHECK(retry_delay(8, 1000ms, 60s, std::chrono::seconds(2), 1.0) == 60s);
}
