// Outbound Graph API request bodies (exact JSON), send responses, and the
// error table that decides between retrying, a template, and giving up.
#include <catch2/catch.hpp>

#include "connectors/whatsapp/whatsapp_graph.h"

using namespace omnibus;
using namespace omnibus::connectors::whatsapp;

namespace {

std::string ok(const envelope::Result<std::string>& r) {
    if (!r) FAIL(r.error().to_string());
    return r.value();
}

GraphError error_of(const SendResponse& r) {
    REQUIRE(std::holds_alternative<GraphError>(r));
    return std::get<GraphError>(r);
}

}  // namespace

TEST_CASE("text replies: preview_url false, optional context and callback data") {
    TextMessage m;
    m.address.to = "16505551234";
    m.body = "Your order 1042 ships today \"express\" 📦";
    CHECK(ok(text_request(m)) ==
          R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"text",)"
          R"("text":{"preview_url":false,"body":"Your order 1042 ships today \"express\" 📦"}})");

    m.address.reply_to = "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDU3";
    m.address.callback_data = "018f3a4c-8e21-7b3a-9c4d-2f6e8a1b3c5e";
    m.preview_url = true;
    CHECK(ok(text_request(m)) ==
          R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234",)"
          R"("context":{"message_id":"wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTdCRDU3"},"type":"text",)"
          R"("text":{"preview_url":true,"body":"Your order 1042 ships today \"express\" 📦"},)"
          R"("biz_opaque_callback_data":"018f3a4c-8e21-7b3a-9c4d-2f6e8a1b3c5e"})");
}

TEST_CASE("text replies the API would refuse are refused before sending") {
    TextMessage m;
    m.address.to = "16505551234";
    CHECK(text_request(m).error().field == "text.body");
    m.body = std::string(4096, 'a');
    CHECK(text_request(m).ok());
    m.body = std::string(4097, 'a');
    CHECK(text_request(m).error().code == envelope::ErrorCode::bad_value);
    m.body.clear();
    for (int i = 0; i < 4096; ++i) m.body += "é";  // characters, not bytes
    CHECK(text_request(m).ok());
    m.address.to.clear();
    CHECK(text_request(m).error().field == "to");
    m.address.to = "1650\n5551234";
    CHECK(text_request(m).error().field == "to");
    m.address.to = "16505551234";
    m.address.reply_to = "";
    CHECK(text_request(m).error().field == "context.message_id");
    m.address.reply_to.reset();
    m.address.callback_data = std::string(513, 'x');
    CHECK(text_request(m).error().field == "biz_opaque_callback_data");
}

TEST_CASE("media replies by link or by media id, with caption and filename") {
    MediaMessage img;
    img.address.to = "16505551234";
    img.kind = MediaKind::image;
    img.link = "https://cdn.example.com/labels/1042.png";
    img.caption = "Your return label";
    CHECK(ok(media_request(img)) ==
          R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"image",)"
          R"("image":{"link":"https://cdn.example.com/labels/1042.png","caption":"Your return label"}})");

    MediaMessage doc;
    doc.address.to = "16505551234";
    doc.address.reply_to = "wamid.Q";
    doc.kind = MediaKind::document;
    doc.media_id = "1458032691496893";
    doc.caption = "Invoice";
    doc.filename = "invoice-1042.pdf";
    CHECK(ok(media_request(doc)) ==
          R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234",)"
          R"("context":{"message_id":"wamid.Q"},"type":"document",)"
          R"("document":{"id":"1458032691496893","caption":"Invoice","filename":"invoice-1042.pdf"}})");

    for (const MediaKind k : {MediaKind::audio, MediaKind::video, MediaKind::sticker}) {
        MediaMessage m;
        m.address.to = "1";
        m.kind = k;
        m.media_id = "42";
        const std::string kind(to_string(k));
        CHECK(ok(media_request(m)) ==
              R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"1","type":")" + kind + R"(",")" +
                  kind + R"(":{"id":"42"}})");
    }
}

TEST_CASE("media replies the API would refuse are refused before sending") {
    MediaMessage m;
    m.address.to = "16505551234";
    m.kind = MediaKind::audio;
    CHECK(media_request(m).error().code == envelope::ErrorCode::missing_field);  // neither link nor id
    m.link = "https://x/a.ogg";
    m.media_id = "1";
    CHECK(media_request(m).error().code == envelope::ErrorCode::missing_field);  // both
    m.media_id.reset();
    m.caption = "no captions on audio";
    CHECK(media_request(m).error().field == "audio.caption");
    m.caption.reset();
    m.kind = MediaKind::sticker;
    m.caption = "nor on stickers";
    CHECK(media_request(m).error().field == "sticker.caption");
    m.caption.reset();
    m.kind = MediaKind::image;
    m.filename = "a.png";
    CHECK(media_request(m).error().field == "image.filename");
    m.filename.reset();
    m.link = "ftp://x/a.png";
    CHECK(media_request(m).error().field == "image.link");
    m.link = "";
    CHECK(media_request(m).error().field == "image.link");
    m.link = "https://x/a.png";
    m.caption = std::string(1025, 'c');
    CHECK(media_request(m).error().field == "image.caption");
}

TEST_CASE("template messages: name, language and components with every parameter type") {
    TemplateMessage t;
    t.address.to = "16505551234";
    t.address.callback_data = "env-1";
    t.name = "order_shipped";
    t.language = "pt_BR";
    using P = TemplateParameter;
    t.components = {
        {"header", std::nullopt, std::nullopt, {P::media_link(P::Type::image, "https://cdn.example.com/h.png")}},
        {"body",
         std::nullopt,
         std::nullopt,
         {P::text("Maria"), P::currency("€89.90", "EUR", 89900), P::date_time("1 May 2024"),
          P::text("1042", "order_number")}},
        {"button", "quick_reply", 0, {P::payload("STOP_PROMOTIONS")}},
        {"button", "url", 1, {P::text("track/1042")}},
        {"button", "copy_code", 2, {P::coupon_code("SUMMER30")}},
    };
    CHECK(
        ok(template_request(t)) ==
        R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"template",)"
        R"("template":{"name":"order_shipped","language":{"code":"pt_BR"},"components":[)"
        R"({"type":"header","parameters":[{"type":"image","image":{"link":"https://cdn.example.com/h.png"}}]},)"
        R"({"type":"body","parameters":[{"type":"text","text":"Maria"},)"
        R"({"type":"currency","currency":{"fallback_value":"€89.90","code":"EUR","amount_1000":89900}},)"
        R"({"type":"date_time","date_time":{"fallback_value":"1 May 2024"}},)"
        R"({"type":"text","parameter_name":"order_number","text":"1042"}]},)"
        R"({"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"STOP_PROMOTIONS"}]},)"
        R"({"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"track/1042"}]},)"
        R"({"type":"button","sub_type":"copy_code","index":"2","parameters":[{"type":"coupon_code","coupon_code":"SUMMER30"}]}]},)"
        R"("biz_opaque_callback_data":"env-1"})");

    TemplateMessage plain;
    plain.address.to = "16505551234";
    plain.name = "follow_up_v2";
    plain.language = "en_US";
    CHECK(ok(template_request(plain)) ==
          R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"16505551234","type":"template",)"
          R"("template":{"name":"follow_up_v2","language":{"code":"en_US"}}})");

    TemplateMessage doc = plain;
    P d = P::media_id(P::Type::document, "555");
    d.filename = "menu.pdf";
    doc.components = {{"header", std::nullopt, std::nullopt, {d}}};
    CHECK(ok(template_request(doc)).find(R"({"type":"document","document":{"id":"555","filename":"menu.pdf"}})") !=
          std::string::npos);
}

TEST_CASE("template messages the API would refuse are refused before sending") {
    TemplateMessage t;
    t.address.to = "16505551234";
    t.language = "en_US";
    CHECK(template_request(t).error().field == "template.name");
    t.name = "x";
    t.language.clear();
    CHECK(template_request(t).error().field == "template.language.code");
    t.language = "en_US";
    t.components = {{"button", std::nullopt, 0, {}}};
    CHECK(template_request(t).error().field == "template.components[0]");
    t.components = {{"body", std::nullopt, std::nullopt, {TemplateParameter::currency("1", "EURO", 1)}}};
    CHECK(template_request(t).error().field == "template.components[0].parameters[0].currency.code");
    t.components = {{"", std::nullopt, std::nullopt, {}}};
    CHECK(template_request(t).error().field == "template.components[0].type");
}

TEST_CASE("mark as read, with and without the typing indicator") {
    CHECK(mark_read_request("wamid.X") == R"({"messaging_product":"whatsapp","status":"read","message_id":"wamid.X"})");
    CHECK(
        mark_read_request("wamid.X", true) ==
        R"({"messaging_product":"whatsapp","status":"read","message_id":"wamid.X","typing_indicator":{"type":"text"}})");
}

TEST_CASE("a successful send gives the wamid") {
    const SendResponse r = parse_send_response(
        200, R"({"messaging_product":"whatsapp","contacts":[{"input":"+16505551234","wa_id":"16505551234"}],
                 "messages":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA","message_status":"accepted"}]})");
    REQUIRE(std::holds_alternative<SendAccepted>(r));
    CHECK(std::get<SendAccepted>(r) ==
          SendAccepted{"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "accepted", "16505551234"});

    const SendResponse bare = parse_send_response(201, R"({"messages":[{"id":"wamid.Y"}]})");
    CHECK(std::get<SendAccepted>(bare) == SendAccepted{"wamid.Y", std::nullopt, std::nullopt});
}

TEST_CASE("a Graph error keeps code, subcode, message, type, details and trace id") {
    const GraphError& e = error_of(parse_send_response(
        400, R"({"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,
                 "error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
                 "error_subcode":2494010,"fbtrace_id":"AbCdEfGhIjKlMnOpQrStUv"}})"));
    CHECK(e.http_status == 400);
    CHECK(e.code == 131047);
    CHECK(e.subcode == 2494010);
    CHECK(e.message == "(#131047) Re-engagement message");
    CHECK(e.type == "OAuthException");
    CHECK(e.details ==
          "Message failed to send because more than 24 hours have passed since the customer last replied to this "
          "number.");
    CHECK(e.fbtrace_id == "AbCdEfGhIjKlMnOpQrStUv");
    CHECK(e.kind == FailureKind::window_closed);
    CHECK_FALSE(e.retryable());

    const GraphError& token = error_of(parse_send_response(
        401,
        R"({"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A1"}})"));
    CHECK(token.kind == FailureKind::auth);
    CHECK(token.subcode == 463);
    CHECK_FALSE(token.retryable());

    const GraphError& throttled = error_of(parse_send_response(
        400,
        R"({"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"A2"}})"));
    CHECK(throttled.kind == FailureKind::rate_limited);
    CHECK(throttled.retryable());
}

TEST_CASE("responses that are not Graph JSON are classified by their HTTP status") {
    CHECK(error_of(parse_send_response(502, "<html>Bad Gateway</html>")).kind == FailureKind::transient);
    CHECK(error_of(parse_send_response(503, "")).retryable());
    CHECK(error_of(parse_send_response(429, "")).kind == FailureKind::rate_limited);
    CHECK(error_of(parse_send_response(400, "nonsense")).kind == FailureKind::unknown);
    CHECK(error_of(parse_send_response(400, "nonsense")).message == "unreadable response: nonsense");
    CHECK(error_of(parse_send_response(404, R"({"something":"else"})")).kind == FailureKind::unknown);
    // 2xx without an id: it may have been sent; retrying could send it twice.
    CHECK(error_of(parse_send_response(200, R"({"messages":[]})")).kind == FailureKind::bad_response);
    CHECK(error_of(parse_send_response(200, "")).kind == FailureKind::bad_response);
    CHECK_FALSE(error_of(parse_send_response(200, "")).retryable());
    // A string code, as some Graph errors carry.
    CHECK(error_of(parse_send_response(400, R"({"error":{"code":"131026"}})")).kind == FailureKind::recipient);
    // Unknown code: 5xx retries, is_transient retries, 4xx does not.
    CHECK(error_of(parse_send_response(500, R"({"error":{"code":999999}})")).kind == FailureKind::transient);
    CHECK(error_of(parse_send_response(400, R"({"error":{"code":999999,"is_transient":true}})")).kind ==
          FailureKind::transient);
    CHECK(error_of(parse_send_response(400, R"({"error":{"code":999999,"is_transient":false}})")).kind ==
          FailureKind::unknown);
}

TEST_CASE("the error-code table") {
    struct Row {
        std::int64_t code;
        FailureKind kind;
    };
    const Row rows[] = {
        {4, FailureKind::rate_limited},
        {80007, FailureKind::rate_limited},
        {130429, FailureKind::rate_limited},
        {131048, FailureKind::rate_limited},
        {131056, FailureKind::rate_limited},
        {132069, FailureKind::rate_limited},
        {1, FailureKind::transient},
        {2, FailureKind::transient},
        {131000, FailureKind::transient},
        {131016, FailureKind::transient},
        {131057, FailureKind::transient},
        {133004, FailureKind::transient},
        {131047, FailureKind::window_closed},
        {0, FailureKind::auth},
        {3, FailureKind::auth},
        {10, FailureKind::auth},
        {190, FailureKind::auth},
        {200, FailureKind::auth},
        {299, FailureKind::auth},
        {131005, FailureKind::auth},
        {131026, FailureKind::recipient},
        {131021, FailureKind::recipient},
        {131049, FailureKind::recipient},
        {131050, FailureKind::recipient},
        {100, FailureKind::invalid_request},
        {131008, FailureKind::invalid_request},
        {131009, FailureKind::invalid_request},
        {131051, FailureKind::invalid_request},
        {131053, FailureKind::invalid_request},
        {135000, FailureKind::invalid_request},
        {132000, FailureKind::template_error},
        {132001, FailureKind::template_error},
        {132012, FailureKind::template_error},
        {132015, FailureKind::template_error},
        {132016, FailureKind::template_error},
        {132068, FailureKind::template_error},
        {368, FailureKind::account},
        {130497, FailureKind::account},
        {131031, FailureKind::account},
        {131042, FailureKind::account},
        {133010, FailureKind::account},
    };
    for (const Row& r : rows) {
        INFO(r.code);
        // The code decides, whatever the HTTP status.
        CHECK(classify(400, r.code) == r.kind);
        CHECK(classify(500, r.code) == r.kind);
        CHECK(classify(0, r.code) == r.kind);
    }
    CHECK(is_retryable(FailureKind::rate_limited));
    CHECK(is_retryable(FailureKind::transient));
    for (const FailureKind k :
         {FailureKind::window_closed, FailureKind::auth, FailureKind::recipient, FailureKind::invalid_request,
          FailureKind::template_error, FailureKind::account, FailureKind::bad_response, FailureKind::unknown})
        CHECK_FALSE(is_retryable(k));
    CHECK(to_string(FailureKind::window_closed) == "window_closed");
}
