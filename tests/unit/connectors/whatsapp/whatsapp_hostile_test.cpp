// Hostile and malformed webhook bodies: a clear error for a body that cannot
// be read, `unsupported` for a malformed message, `rejected` for a part that
// cannot become an event, and never a crash or a lost message.
#include <catch2/catch.hpp>

#include "connectors/whatsapp/whatsapp_codec.h"
#include "whatsapp_test_support.h"

using namespace omnibus;
using namespace omnibus::envelope;
using namespace omnibus::connectors::whatsapp;
using namespace omnibus::connectors::whatsapp::testing;

namespace {

// A webhook whose one change has this `value`.
std::string with_value(const std::string& value) {
    return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":)" +
           value + "}]}]}";
}

// A webhook with these messages from Maria.
std::string with_messages(const std::string& messages) {
    return with_value(R"({"messaging_product":"whatsapp",
        "metadata":{"display_phone_number":"16505553333","phone_number_id":"106540352242922"},
        "contacts":[{"profile":{"name":"Maria Silva"},"wa_id":"16505551234"}],"messages":[)" +
                      messages + "]}");
}

std::string message(const std::string& type_and_body, const std::string& id = "wamid.X") {
    return R"({"from":"16505551234","id":")" + id + R"(","timestamp":"1714566895",)" + type_and_body + "}";
}

Error body_error_of(std::string_view body, const CodecOptions& opts = {"whatsapp-eu", ""}) {
    const WebhookCodec c(opts);
    auto r = c.parse(body, kReceived);
    REQUIRE_FALSE(r.ok());
    return r.error();
}

}  // namespace

TEST_CASE("a body that cannot be read as a WhatsApp webhook is refused as a whole, with a reason") {
    CHECK(body_error_of("").code == ErrorCode::bad_json);
    CHECK(body_error_of("{\"object\":").code == ErrorCode::bad_json);
    CHECK(body_error_of("{} trailing").code == ErrorCode::bad_json);
    CHECK(body_error_of("[1,2]").code == ErrorCode::wrong_type);
    CHECK(body_error_of("\"whatsapp\"").code == ErrorCode::wrong_type);
    CHECK(body_error_of(R"({"entry":[]})").code == ErrorCode::missing_field);
    const Error other = body_error_of(R"({"object":"page","entry":[]})");
    CHECK(other.code == ErrorCode::bad_value);
    CHECK(other.to_string() == R"(object: expected "whatsapp_business_account", got "page")");
    CHECK(body_error_of(R"({"object":"whatsapp_business_account"})").code == ErrorCode::missing_field);
    CHECK(body_error_of(R"({"object":"whatsapp_business_account","entry":{}})").code == ErrorCode::wrong_type);
    CHECK(body_error_of("{\"object\":\"whatsapp_business_account\",\"entry\":[\"\xC3\x28\"]}").code ==
          ErrorCode::bad_utf8);
    CHECK(body_error_of(R"({"object":"whatsapp_business_account","entry":["\udc00"]})").code == ErrorCode::bad_utf8);
    CHECK(body_error_of(R"({"object":"whatsapp_business_account","entry":["\ud800"]})").code == ErrorCode::bad_json);
    CHECK(body_error_of(R"({"object":"whatsapp_business_account","entry":[1e999]})").code == ErrorCode::bad_json);

    const Error deep = body_error_of(std::string(10000, '[') + std::string(10000, ']'));
    CHECK(deep.code == ErrorCode::too_deep);
    CodecOptions small{"whatsapp-eu", ""};
    small.max_body_bytes = 1024;
    CHECK(body_error_of(sample("contacts"), small).code == ErrorCode::too_large);
}

TEST_CASE("an empty entry list, or changes without messages, are no events and no error") {
    auto r = codec().parse(R"({"object":"whatsapp_business_account","entry":[]})", kReceived);
    REQUIRE(r.ok());
    CHECK(r->messages.empty());
    auto v = codec().parse(with_value(R"({"messaging_product":"whatsapp","metadata":{}})"), kReceived);
    REQUIRE(v.ok());
    CHECK(v->messages.empty());
    CHECK(v->rejected.empty());
}

TEST_CASE("a message with malformed content is kept as `unsupported` with its payload, and reported") {
    struct Case {
        std::string type_and_body;
        std::string field;
    };
    const Case cases[] = {
        {R"("type":"text","text":{"body":42})", "text.body"},
        {R"("type":"text")", "text.body"},
        {R"("type":"image","image":{"mime_type":"image/jpeg"})", "image.id"},
        {R"("type":"document","document":"file.pdf")", "document.id"},
        {R"("type":"location","location":{"latitude":"52.5","longitude":13.4})", "location.latitude/longitude"},
        {R"("type":"location","location":{"latitude":91,"longitude":13.4})", "location"},
        {R"("type":"contacts","contacts":[])", "contacts"},
        {R"("type":"interactive")", "interactive"},
        {R"("type":"button","button":[])", "button"},
        {R"("type":"reaction","reaction":{"emoji":"👍"})", "reaction.message_id"},
        {R"("type":"order","order":null)", "order"},
        {R"("type":"system","system":"x")", "system"},
        {R"("type":"hologram","hologram":{"depth":3})", "type"},
        {R"("type":7)", "type"},
        {R"("text":{"body":"no type"})", "type"},
    };
    for (const Case& c : cases) {
        INFO(c.type_and_body);
        auto r = codec().parse(with_messages(message(c.type_and_body)), kReceived);
        REQUIRE(r.ok());
        REQUIRE(r->messages.size() == 1);
        const Envelope& e = r->messages[0];
        CHECK(e.content.type == ContentType::unsupported);
        CHECK_FALSE(e.content.text);
        CHECK(e.content.attachments.empty());
        CHECK(e.platform->message_id == "wamid.X");
        CHECK(e.sender.id == "whatsapp:16505551234");
        CHECK(e.platform->payload->text().find(compact("{" + c.type_and_body + "}").substr(1, 10)) !=
              std::string::npos);
        CHECK(validate(e).ok());
        REQUIRE(r->degraded.size() == 1);
        CHECK(r->degraded[0].message == 0);
        CHECK(r->degraded[0].reason.field == "entry[0].changes[0].value.messages[0]." + c.field);
    }
}

TEST_CASE("a malformed message keeps its reply_to, and a bad sha256 or empty caption is just left out") {
    auto r = codec().parse(
        with_messages(message(
            R"("type":"image","context":{"id":"wamid.Q"},"image":{"id":"77","sha256":"not-a-hash","caption":""})")),
        kReceived);
    REQUIRE(r.ok());
    const Envelope& e = r->messages.at(0);
    CHECK(r->degraded.empty());
    CHECK(e.content.type == ContentType::image);
    CHECK(e.content.reply_to == "wamid.Q");
    REQUIRE(e.content.attachments.size() == 1);
    CHECK_FALSE(e.content.attachments[0].sha256);
    CHECK_FALSE(e.content.attachments[0].caption);
    CHECK_FALSE(e.content.text);
    CHECK(validate(e).ok());

    auto d = codec().parse(with_messages(message(R"("type":"text","context":{"id":"wamid.Q"})")), kReceived);
    REQUIRE(d.ok());
    CHECK(d->messages.at(0).content.type == ContentType::unsupported);
    CHECK(d->messages[0].content.reply_to == "wamid.Q");
}

TEST_CASE("a part that cannot become an event is rejected with its raw JSON, and the rest still counts") {
    const std::string good = message(R"("type":"text","text":{"body":"ok"})", "wamid.good");
    struct Case {
        std::string bad;
        ErrorCode code;
        std::string field;
    };
    const Case cases[] = {
        {R"({"from":"16505551234","timestamp":"1","type":"text","text":{"body":"no id"}})", ErrorCode::missing_field,
         "entry[0].changes[0].value.messages[0].id"},
        {R"({"from":"16505551234","id":"","type":"text","text":{"body":"empty id"}})", ErrorCode::missing_field,
         "entry[0].changes[0].value.messages[0].id"},
        {R"({"from":"16505551234","id":"wamid\u0000x","type":"text","text":{"body":"NUL"}})", ErrorCode::bad_value,
         "entry[0].changes[0].value.messages[0].id"},
        {R"({"id":"wamid.nofrom","type":"text","text":{"body":"who?"}})", ErrorCode::missing_field,
         "entry[0].changes[0].value.messages[0].from"},
        {R"({"from":"+1 650 555","id":"wamid.badfrom","type":"text","text":{"body":"x"}})", ErrorCode::bad_value,
         "entry[0].changes[0].value.messages[0].from"},
        {R"("just a string")", ErrorCode::wrong_type, "entry[0].changes[0].value.messages[0]"},
        {R"(null)", ErrorCode::wrong_type, "entry[0].changes[0].value.messages[0]"},
    };
    for (const Case& c : cases) {
        INFO(c.bad);
        // No contacts: the only-contact fallback must not lend a sender either.
        auto r = codec().parse(with_value(R"({"messages":[)" + c.bad + "," + good + "]}"), kReceived);
        REQUIRE(r.ok());
        REQUIRE(r->messages.size() == 1);
        CHECK(r->messages[0].platform->message_id == "wamid.good");
        REQUIRE(r->rejected.size() == 1);
        CHECK(r->rejected[0].error.code == c.code);
        CHECK(r->rejected[0].error.field == c.field);
        CHECK(r->rejected[0].raw.text() == compact(c.bad));
    }
}

TEST_CASE("malformed entries, changes and lists are rejected one by one") {
    const std::string good_change =
        R"({"field":"messages","value":{"messages":[{"from":"16505551234","id":"wamid.ok","type":"text","text":{"body":"ok"}}]}})";
    const std::string body = R"({"object":"whatsapp_business_account","entry":[
        42,
        {"id":"1"},
        {"id":"2","changes":{}},
        {"id":"3","changes":[7, {"value":{}}, {"field":"messages"}, {"field":"messages","value":[]},
                             {"field":"messages","value":{"messages":{},"statuses":"x"}},
                             {"field":"messages","value":{"statuses":[{"status":"sent"},{"id":"wamid.s"},{"id":"wamid.t","status":"read"}]}},
                             )" +
                             good_change + R"(]}]})";
    auto r = codec().parse(body, kReceived);
    REQUIRE(r.ok());
    REQUIRE(r->messages.size() == 1);
    CHECK(r->messages[0].platform->message_id == "wamid.ok");
    REQUIRE(r->statuses.size() == 1);
    CHECK(r->statuses[0].message_id == "wamid.t");

    std::vector<std::string> fields;
    for (const Rejected& x : r->rejected) fields.push_back(x.error.field);
    CHECK(fields == std::vector<std::string>{
                        "entry[0]",
                        "entry[1].changes",
                        "entry[2].changes",
                        "entry[3].changes[0]",
                        "entry[3].changes[1].field",
                        "entry[3].changes[2].value",
                        "entry[3].changes[3].value",
                        "entry[3].changes[4].value.messages",
                        "entry[3].changes[4].value.statuses",
                        "entry[3].changes[5].value.statuses[0].id",
                        "entry[3].changes[5].value.statuses[1].status",
                    });
    CHECK(r->rejected[0].raw.text() == "42");
}

TEST_CASE("value.errors and other webhook fields are passed through, not lost") {
    auto r = codec().parse(with_value(R"({"messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},
                       "errors":[{"code":131052,"title":"Media download error"}]})"),
                           kReceived);
    REQUIRE(r.ok());
    REQUIRE(r->other.size() == 1);
    CHECK(r->other[0].field == "messages.errors");
    CHECK(r->other[0].waba_id == "102290129340398");
    CHECK(r->other[0].value.text() == R"([{"code":131052,"title":"Media download error"}])");
}

TEST_CASE("odd but harmless values: timestamps, ids, duplicate keys, huge batches") {
    SECTION("a bad timestamp: no platform.timestamp, the id falls back to received_at") {
        for (const char* ts : {R"("soon")", R"("-5")", R"(-5)", R"(1.5)", R"("99999999999999")", R"("")", "null"}) {
            INFO(ts);
            auto r = codec().parse(with_messages(R"({"from":"16505551234","id":"wamid.T","timestamp":)" +
                                                 std::string(ts) + R"(,"type":"text","text":{"body":"x"}})"),
                                   kReceived);
            REQUIRE(r.ok());
            const Envelope& e = r->messages.at(0);
            CHECK_FALSE(e.platform->timestamp);
            CHECK(e.id == message_event_id("wamid.T", kReceived));
        }
        auto n = codec().parse(
            with_messages(
                R"({"from":"16505551234","id":"wamid.N","timestamp":1714566895,"type":"text","text":{"body":"x"}})"),
            kReceived);
        REQUIRE(n.ok());
        CHECK(n->messages.at(0).platform->timestamp == at("2024-05-01T12:34:55Z"));
    }
    SECTION("strings with NUL, control characters and every script survive to the envelope") {
        auto r = codec().parse(
            with_messages(message(R"("type":"text","text":{"body":"a\u0000b\n\t\u001f 李 🌸 مرحبا"})")), kReceived);
        REQUIRE(r.ok());
        CHECK(r->messages.at(0).content.text == std::string("a\0b", 3) + "\n\t\x1f 李 🌸 مرحبا");
        auto back = decode(encode(r->messages[0], "k"));
        REQUIRE(back.ok());
        CHECK(*back == r->messages[0]);
    }
    SECTION("a thousand messages in one POST") {
        std::string list;
        for (int i = 0; i < 1000; ++i) {
            if (i) list += ',';
            list += message(R"("type":"text","text":{"body":"m)" + std::to_string(i) + R"("})",
                            "wamid." + std::to_string(i));
        }
        auto r = codec().parse(with_messages(list), kReceived);
        REQUIRE(r.ok());
        REQUIRE(r->messages.size() == 1000);
        CHECK(r->messages[999].content.text == "m999");
    }
    SECTION("deep nesting inside a message is bounded by max_depth") {
        std::string deep = std::string(40, '[') + std::string(40, ']');
        auto r =
            codec().parse(with_messages(message(R"("type":"text","text":{"body":"x"},"extra":)" + deep)), kReceived);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == ErrorCode::too_deep);
    }
}

TEST_CASE("the codec refuses a channel name the envelope would refuse, and an unknown region") {
    CHECK_THROWS_AS(WebhookCodec(CodecOptions{"", ""}), std::invalid_argument);
    CHECK_THROWS_AS(WebhookCodec(CodecOptions{"whats app", ""}), std::invalid_argument);
    CHECK_THROWS_AS(WebhookCodec(CodecOptions{"wa", "XX"}), std::invalid_argument);
    CHECK_NOTHROW(WebhookCodec(CodecOptions{"wa.eu-1_b", "BR"}));
}

TEST_CASE("the GET handshake answers the challenge only to the right token") {
    CHECK(verify_subscription("subscribe", "s3cret", "1158201444", "s3cret") == HandshakeReply{200, "1158201444"});
    CHECK(verify_subscription("subscribe", "wrong!", "1158201444", "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "s3cre", "1158201444", "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "", "1158201444", "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "", "1158201444", "").status == 403);  // an unset token never matches
    CHECK(verify_subscription("unsubscribe", "s3cret", "1158201444", "s3cret").status == 403);
    CHECK(verify_subscription("", "s3cret", "1158201444", "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "s3cret", "", "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "s3cret", "<script>alert(1)</script>", "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "s3cret", std::string(129, '1'), "s3cret").status == 403);
    CHECK(verify_subscription("subscribe", "s3cret", "abc-DEF_1.2~3", "s3cret").body == "abc-DEF_1.2~3");
    CHECK(verify_subscription("subscribe", "s3cret", "1158201444", "s3cret").body.size() == 10);
    CHECK(verify_subscription("subscribe", "wrong!", "1158201444", "s3cret").body.empty());
}
