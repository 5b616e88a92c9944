// Encoding then decoding gives back the same envelope, with the CloudEvents
// headers the contract names and no key for what is absent.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <string>

#include "envelope/envelope.h"
#include "unit/envelope/envelope_samples.h"

using namespace omnibus;
using namespace omnibus::envelope;
using namespace omnibus::envelope::testing;

namespace {

std::string header_value(const kafka::Record& r, std::string_view name) {
    const kafka::Header* h = r.header(name);
    return h ? h->value : "<absent>";
}

rapidjson::Document parse(const std::string& body) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

}  // namespace

TEST_CASE("a full envelope survives encode and decode unchanged") {
    const Envelope in = full_envelope();
    REQUIRE(validate(in).ok());
    const kafka::Record r = encode(in, "whatsapp:15551234567");
    auto out = decode(r);
    INFO((out ? std::string() : out.error().to_string()));
    REQUIRE(out.ok());
    CHECK(out->sender == in.sender);
    CHECK(out->content == in.content);
    CHECK(out->platform == in.platform);
    CHECK(out->context == in.context);
    CHECK(*out == in);
    CHECK(r.key == "whatsapp:15551234567");
    CHECK(r.topic.empty());
}

TEST_CASE("a minimal envelope survives encode and decode unchanged") {
    const Envelope in = minimal_envelope();
    auto out = decode(encode(in, "k"));
    REQUIRE(out.ok());
    CHECK(*out == in);
}

TEST_CASE("the record carries the CloudEvents binary-mode headers, exactly") {
    Envelope in = minimal_envelope();
    const kafka::Record r = encode(in, "whatsapp:15551234567");
    std::vector<std::string> names;
    for (const auto& h : r.headers) names.push_back(h.name);
    CHECK(names == std::vector<std::string>{"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time",
                                            "ce_dataschema", "content-type"});
    CHECK(header_value(r, "ce_specversion") == "1.0");
    CHECK(header_value(r, "ce_id") == "0190a6e2-3b4c-7d5e-8f60-718293a4b5c6");
    CHECK(header_value(r, "ce_source") == "/omnibus/channels/whatsapp-eu");
    CHECK(header_value(r, "ce_type") == "com.omnibus.message.inbound");
    CHECK(header_value(r, "ce_time") == "2024-05-01T12:34:56.789Z");
    CHECK(header_value(r, "ce_dataschema") == "urn:omnibus:schema:envelope");
    CHECK(header_value(r, "content-type") == "application/json");
    CHECK(header_value(r, "ce_subject") == "<absent>");

    in.direction = Direction::outbound;
    in.channel.name = "web chat/1";
    const kafka::Record o = encode(in, "cus_1");
    CHECK(header_value(o, "ce_type") == "com.omnibus.message.outbound");
    CHECK(header_value(o, "ce_source") == "/omnibus/channels/web%20chat%2F1");
}

TEST_CASE("the minimal body is exactly the required keys, in contract order") {
    CHECK(encode_body(minimal_envelope()) ==
          R"({"schema_version":1,"id":"0190a6e2-3b4c-7d5e-8f60-718293a4b5c6",)"
          R"("channel":{"type":"whatsapp","name":"whatsapp-eu"},"direction":"inbound",)"
          R"("sender":{"id":"whatsapp:15551234567"},"content":{"type":"text"},)"
          R"("received_at":"2024-05-01T12:34:56.789Z","platform":{"message_id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdCRDU3"}})");
}

TEST_CASE("absent optionals are absent from the JSON, never null or empty") {
    Envelope e = minimal_envelope();
    e.sender.verified_claims = VerifiedClaims{};  // present but empty: an empty object
    e.route = Route{RouteTarget::ai, std::nullopt, 0, std::nullopt, {}};
    const std::string body = encode_body(e);
    CHECK(body.find("null") == std::string::npos);
    CHECK(body.find("[]") == std::string::npos);
    const auto d = parse(body);
    for (const char* k : {"recipient", "customer_id", "conversation_id", "language", "language_confidence",
                          "intent", "entities", "sentiment", "context"})
        CHECK_FALSE(d.HasMember(k));
    CHECK_FALSE(d["sender"].HasMember("display_name"));
    CHECK_FALSE(d["sender"].HasMember("identities"));
    CHECK(d["sender"]["verified_claims"].ObjectEmpty());
    CHECK_FALSE(d["content"].HasMember("text"));
    CHECK_FALSE(d["content"].HasMember("attachments"));
    CHECK_FALSE(d["platform"].HasMember("payload"));
    CHECK(d["route"].MemberCount() == 2);  // target, priority
    auto back = decode_body(body);
    REQUIRE(back.ok());
    CHECK(*back == e);
}

TEST_CASE("a full body has every key of the contract") {
    const auto d = parse(encode_body(full_envelope()));
    for (const char* k : {"schema_version", "id", "channel", "direction", "sender", "recipient", "content",
                          "received_at", "platform", "customer_id", "conversation_id", "language",
                          "language_confidence", "intent", "entities", "sentiment", "route", "context"})
        CHECK(d.HasMember(k));
    CHECK(d["platform"]["payload"].IsObject());  // a JSON value, not a string
    CHECK(d["platform"]["payload"]["big"].GetInt64() == 12345678901234);
    CHECK(d["route"]["target"] == "human");
    CHECK(d["sentiment"]["label"] == "negative");
    CHECK(d["language_confidence"].GetDouble() == 0.93);
}

TEST_CASE("CJK, Arabic, emoji and escapes round-trip byte for byte") {
    const char* texts[] = {
        "您好，我的包裹还没到。请帮我查一下订单 #1042，谢谢！",
        "こんにちは、注文した商品がまだ届いていません。",
        "안녕하세요, 주문 상태를 알려주세요",
        "مرحبا، أين طلبي؟ رقم الطلب ١٠٤٢",
        "שלום, איפה ההזמנה שלי?",
        "👍🏽👨‍👩‍👧‍👦🇧🇷 ❤️ \U0001F600",
        "quote \" backslash \\ newline \n tab \t nul-free control \x01 \x1f slash / </script>",
        "\xE2\x80\xA8 line separators \xE2\x80\xA9",
    };
    for (const char* t : texts) {
        Envelope e = minimal_envelope();
        e.content.text = t;
        e.sender.display_name = t;
        auto out = decode(encode(e, "k"));
        REQUIRE(out.ok());
        CHECK(out->content.text == std::string(t));
        CHECK(*out == e);
    }
    // Non-ASCII is written as UTF-8, not \u escapes.
    Envelope e = minimal_envelope();
    e.content.text = "李";
    CHECK(encode_body(e).find("\"text\":\"李\"") != std::string::npos);
}

TEST_CASE("the encoder replaces invalid UTF-8 with U+FFFD so its output always decodes") {
    Envelope e = minimal_envelope();
    e.content.text = std::string("ok \xC3\x28 bad \xED\xA0\x80 surrogate \xF0\x9F\x98 cut");
    e.sender.display_name = std::string("\xFF\xFE", 2);
    auto out = decode(encode(e, "k"));
    REQUIRE(out.ok());
    CHECK(*out->content.text == "ok \xEF\xBF\xBD( bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD surrogate \xEF\xBF\xBD cut");
    CHECK(*out->sender.display_name == "\xEF\xBF\xBD\xEF\xBF\xBD");

    // The id is also a header, where it cannot be repaired: validate() says so.
    e.id = "id-\xFF";
    CHECK(validate(e).error().to_string() == "id: not valid UTF-8");
}

TEST_CASE("decode reads any RFC 3339 offset and fraction and encode writes UTC with ms") {
    Envelope e = minimal_envelope();
    std::string body = encode_body(e);
    const std::string from = "\"received_at\":\"2024-05-01T12:34:56.789Z\"";
    body.replace(body.find(from), from.size(), "\"received_at\":\"2024-05-01T14:34:56.789123+02:00\"");
    auto out = decode_body(body);
    REQUIRE(out.ok());
    CHECK(out->received_at == e.received_at);
    CHECK(encode_body(*out) == encode_body(e));
}

TEST_CASE("unknown fields are tolerated and unknown top-level fields are kept") {
    const std::string body =
        R"({"schema_version":3,"id":"x-1","channel":{"type":"whatsapp","name":"wa","region":"eu"},)"
        R"("direction":"inbound","sender":{"id":"whatsapp:1","future":{"a":[1,2]}},)"
        R"("content":{"type":"carousel","text":"hi","cards":[]},"received_at":"2024-05-01T12:34:56.789Z",)"
        R"("platform":{"message_id":"m1","extra":1},"x_future":{"k":[true,null]},"x_flag":false})";
    auto out = decode_body(body);
    INFO((out ? std::string() : out.error().to_string()));
    REQUIRE(out.ok());
    CHECK(out->schema_version == 3);
    CHECK(out->content.type == ContentType::unsupported);  // an open set
    REQUIRE(out->unknown_fields.size() == 2);
    CHECK(out->unknown_fields[0].name == "x_future");
    CHECK(out->unknown_fields[0].value.text() == R"({"k":[true,null]})");
    CHECK(out->unknown_fields[1].name == "x_flag");
    CHECK(out->unknown_fields[1].value.text() == "false");

    // Re-encoding keeps the top-level unknowns (and the producer's version);
    // unknown keys inside known objects are not kept.
    const std::string again = encode_body(*out);
    CHECK(again.find(R"("x_future":{"k":[true,null]},"x_flag":false})") != std::string::npos);
    CHECK(again.find("\"schema_version\":3") != std::string::npos);
    CHECK(again.find("region") == std::string::npos);
    auto twice = decode_body(again);
    REQUIRE(twice.ok());
    CHECK(*twice == *out);
}

TEST_CASE("null is read as absent for optional fields") {
    const std::string body =
        R"({"schema_version":1,"id":"x-1","channel":{"type":"whatsapp","name":"wa"},"direction":"inbound",)"
        R"("sender":{"id":"whatsapp:1","display_name":null,"identities":null},"recipient":null,)"
        R"("content":{"type":"text","text":null,"attachments":null},"received_at":"2024-05-01T12:34:56.789Z",)"
        R"("platform":{"message_id":"m1","timestamp":null},"customer_id":null,"intent":null,"context":null})";
    auto out = decode_body(body);
    INFO((out ? std::string() : out.error().to_string()));
    REQUIRE(out.ok());
    CHECK_FALSE(out->sender.display_name);
    CHECK_FALSE(out->recipient);
    CHECK_FALSE(out->content.text);
    CHECK_FALSE(out->customer_id);
    CHECK(out->context.empty());
}

TEST_CASE("an outbound reply needs no platform id and carries its recipient") {
    Envelope e = minimal_envelope();
    e.direction = Direction::outbound;
    e.platform.reset();
    e.sender.id = "whatsapp:15550001111";
    e.recipient = Participant{"whatsapp:15551234567", std::nullopt, {}, std::nullopt};
    e.content.text = "Your order ships tomorrow.";
    e.customer_id = "cus_1";
    auto out = decode(encode(e, "cus_1"));
    REQUIRE(out.ok());
    CHECK(*out == e);
}

TEST_CASE("non-finite numbers are left out by encode and reported by validate") {
    Envelope e = minimal_envelope();
    e.language = "en";
    e.language_confidence = std::numeric_limits<double>::quiet_NaN();
    const std::string body = encode_body(e);
    CHECK(body.find("language_confidence") == std::string::npos);
    CHECK(decode_body(body).ok());
    const Status st = validate(e);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().to_string() == "language_confidence: not a finite number");
}

TEST_CASE("the generic CloudEvent layer round-trips attributes for any event type") {
    CloudEvent ce;
    ce.id = new_id();
    ce.source = "/omnibus/channels/whatsapp-eu";
    ce.type = std::string(event_type::message_status);
    ce.time = at("2024-05-01T12:00:00.001Z");
    ce.subject = "wamid.X";
    const kafka::Record r = to_record(ce, "whatsapp:1", R"({"status":"delivered"})");
    CHECK(header_value(r, "ce_subject") == "wamid.X");
    CHECK(header_value(r, "ce_dataschema") == "<absent>");
    auto back = read_attributes(r);
    REQUIRE(back.ok());
    CHECK(*back == ce);

    json::LocalDocument<> doc;
    auto ev = read_event(r, doc);
    REQUIRE(ev.ok());
    CHECK(doc.doc()["status"] == "delivered");
}

TEST_CASE("enum names are the contract's strings") {
    CHECK(to_string(ContentType::template_) == "template");
    CHECK(parse_content_type("template") == ContentType::template_);
    CHECK(parse_content_type("hologram") == ContentType::unsupported);
    CHECK(parse_attachment_type("hologram") == AttachmentType::other);
    CHECK(to_string(RouteTarget::human) == "human");
    CHECK_FALSE(parse_route_target("robot"));
    CHECK(parse_direction("outbound") == Direction::outbound);
    CHECK(parse_sentiment_label("positive") == SentimentLabel::positive);
    CHECK(is_identity("messenger:1234:5678"));
    CHECK(is_identity("phone:+15551234567"));
    CHECK_FALSE(is_identity("15551234567"));
    CHECK_FALSE(is_identity(":x"));
    CHECK_FALSE(is_identity("whatsapp:"));
    CHECK_FALSE(is_identity("WhatsApp:1"));
}

TEST_CASE("control characters are always escaped on encode and refused raw on decode") {
    // Every alignment, because SIMD string scanners work 16 bytes at a time.
    for (int c = 1; c < 0x20; ++c) {
        for (std::size_t pad = 0; pad < 40; ++pad) {
            Envelope e = minimal_envelope();
            e.content.text = std::string(pad, 'a') + std::string(4, static_cast<char>(c)) + "Z";
            const std::string body = encode_body(e);
            REQUIRE(std::none_of(body.begin(), body.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20; }));
            auto out = decode_body(body);
            REQUIRE(out.ok());
            REQUIRE(*out == e);

            std::string raw = body;
            raw.replace(raw.find("\"type\":\"text\""), 13,
                        "\"type\":\"text\",\"text\":\"" + std::string(pad, 'a') + static_cast<char>(c) + "\"");
            REQUIRE_FALSE(decode_body(raw).ok());
        }
    }
}

TEST_CASE("with_customer_id adds the customer to an encoded body and changes nothing else") {
    for (Envelope in : {full_envelope(), minimal_envelope(), typical_text_envelope()}) {
        in.customer_id.reset();
        const std::string body = encode_body(in);
        for (const std::string& b : {body, body + "\n", body + " \r\n\t"}) {
            auto spliced = with_customer_id(b, "0190b3c4-7e1a-7b2c-9d3e-4f5a6b7c8d9e");
            REQUIRE(spliced);
            auto out = decode_body(*spliced);
            INFO((out ? std::string() : out.error().to_string()));
            REQUIRE(out.ok());
            Envelope expected = in;
            expected.customer_id = "0190b3c4-7e1a-7b2c-9d3e-4f5a6b7c8d9e";
            CHECK(*out == expected);
            CHECK(encode_body(*out) == encode_body(expected));  // the same message as a full encode
        }
    }
    CHECK(with_customer_id("{}", "c-1") == std::optional<std::string>("{\"customer_id\":\"c-1\"}"));
    CHECK(with_customer_id("{ \n}", "c-1") == std::optional<std::string>("{ \n\"customer_id\":\"c-1\"}"));
}

TEST_CASE("with_customer_id declines what it cannot splice without escaping or guessing") {
    const std::string body = encode_body(minimal_envelope());
    for (const char* id : {"", "c\"1", "c\\1", "c 1", "c/1", "é", "c\n"}) {
        INFO(id);
        CHECK_FALSE(with_customer_id(body, id));
    }
    CHECK_FALSE(with_customer_id(std::string(64, 'a'), "c"));  // no closing brace
    CHECK_FALSE(with_customer_id(body, std::string(257, 'c')));
    CHECK_FALSE(with_customer_id("[1,2]", "c-1"));
    // Decoded as absent, yet named: a second member would be an error.
    CHECK_FALSE(with_customer_id(R"({"id":"x","customer_id":null})", "c-1"));
    CHECK_FALSE(with_customer_id(R"({"id":"x","customer\u005fid":null})", "c-1"));
    CHECK_FALSE(with_customer_id("", "c-1"));
    CHECK_FALSE(with_customer_id("}", "c-1"));
}
