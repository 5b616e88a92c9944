// Hostile or broken records never crash decode: each gives one error naming
// the header or body field at fault.
#include <catch2/catch.hpp>

#include <string>

#include "envelope/envelope.h"
#include "unit/envelope/envelope_samples.h"

using namespace omnibus;
using namespace omnibus::envelope;
using namespace omnibus::envelope::testing;

namespace {

kafka::Record good() { return encode(minimal_envelope(), "whatsapp:15551234567"); }

// The record with header `name` set to value (added when absent).
kafka::Record with_header(kafka::Record r, std::string_view name, std::string value) {
    for (auto& h : r.headers)
        if (h.name == name) {
            h.value = std::move(value);
            return r;
        }
    r.headers.push_back({std::string(name), std::move(value)});
    return r;
}

kafka::Record without_header(kafka::Record r, std::string_view name) {
    std::erase_if(r.headers, [&](const kafka::Header& h) { return h.name == name; });
    return r;
}

// The good body with `from` replaced by `to`.
kafka::Record with_body_edit(std::string_view from, std::string_view to) {
    kafka::Record r = good();
    const auto at = r.value.find(from);
    REQUIRE(at != std::string::npos);
    r.value.replace(at, from.size(), to);
    return r;
}

struct Failure {
    ErrorCode code;
    std::string text;
};

Failure failure(const kafka::Record& r, const DecodeOptions& o = {}) {
    auto res = decode(r, o);
    REQUIRE_FALSE(res.ok());
    return {res.error().code, res.error().to_string()};
}

Failure body_failure(std::string_view from, std::string_view to) { return failure(with_body_edit(from, to)); }

}  // namespace

TEST_CASE("the good record decodes (the baseline of every case below)") { REQUIRE(decode(good()).ok()); }

TEST_CASE("missing and wrong CloudEvents headers") {
    for (const char* h : {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "content-type"}) {
        const Failure f = failure(without_header(good(), h));
        CHECK(f.code == ErrorCode::missing_header);
        CHECK(f.text == "header " + std::string(h) + ": missing");
    }
    auto f = failure(with_header(good(), "ce_specversion", "0.3"));
    CHECK(f.code == ErrorCode::bad_header);
    CHECK(f.text == R"(header ce_specversion: expected "1.0", got "0.3")");

    f = failure(with_header(good(), "content-type", "application/cloudevents+json"));
    CHECK(f.text == R"(header content-type: expected application/json, got "application/cloudevents+json")");
    CHECK(failure(with_header(good(), "content-type", "text/plain")).code == ErrorCode::bad_header);
    CHECK(failure(with_header(good(), "content-type", "application/json; charset=latin1")).code ==
          ErrorCode::bad_header);
    CHECK(decode(with_header(good(), "content-type", "Application/JSON; charset=\"UTF-8\"")).ok());

    f = failure(with_header(good(), "ce_time", "yesterday"));
    CHECK(f.text == R"(header ce_time: not an RFC 3339 date-time: "yesterday")");
    f = failure(with_header(good(), "ce_id", ""));
    CHECK(f.text == "header ce_id: empty");
    f = failure(with_header(good(), "ce_source", std::string("/x\n/y")));
    CHECK(f.text == R"(header ce_source: not printable UTF-8: "/x?/y")");

    kafka::Record dup = good();
    dup.headers.push_back({"ce_type", "com.omnibus.message.outbound"});
    f = failure(dup);
    CHECK(f.code == ErrorCode::bad_header);
    CHECK(f.text == "header ce_type: duplicated");
}

TEST_CASE("ce_type and ce_id must agree with the body") {
    auto f = failure(with_header(good(), "ce_type", "com.omnibus.message.status"));
    CHECK(f.text == R"(header ce_type: not a message event: "com.omnibus.message.status" (expected )"
                    R"(com.omnibus.message.inbound or com.omnibus.message.outbound))");
    f = failure(with_header(good(), "ce_type", "com.omnibus.message.outbound"));
    CHECK(f.text == R"(header ce_type: "com.omnibus.message.outbound" does not match direction inbound)");
    f = failure(with_header(good(), "ce_id", "other"));
    CHECK(f.text ==
          R"(header ce_id: "other" does not match body id "0190a6e2-3b4c-7d5e-8f60-718293a4b5c6")");
}

TEST_CASE("malformed JSON") {
    kafka::Record r = good();
    r.value = R"({"schema_version":1,"id":)";
    auto f = failure(r);
    CHECK(f.code == ErrorCode::bad_json);
    CHECK(f.text == "id: Invalid value. (offset 25)");

    r.value = "";
    CHECK(failure(r).text == "body: The document is empty. (offset 0)");
    r.value = "[1,2]";
    CHECK(failure(r).text == "body: expected an object, got array");
    const std::string end = std::to_string(good().value.size());
    r.value = good().value + " {}";
    CHECK(failure(r).text == "body: The document root must not be followed by other values. (offset " +
                                 std::to_string(good().value.size() + 1) + ")");
    r.value = good().value + std::string("\0junk", 5);
    CHECK(failure(r).text == "body: unexpected data after the JSON value (offset " + end + ")");
    r.value = R"({"schema_version":1,"id":"a", "sender":{"id":"whatsapp:1",]})";
    CHECK(failure(r).text == "sender.id: Missing a name for object member. (offset 58)");
}

TEST_CASE("wrong types name the field") {
    CHECK(body_failure(R"("sender":{"id":"whatsapp:15551234567"})", R"("sender":{"id":15551234567})").text ==
          "sender.id: expected a string, got number");
    CHECK(body_failure(R"("schema_version":1)", R"("schema_version":"1")").text ==
          "schema_version: expected an integer (32-bit), got string");
    CHECK(body_failure(R"("schema_version":1)", R"("schema_version":1.5)").text ==
          "schema_version: expected an integer (32-bit), got number");
    CHECK(body_failure(R"("content":{"type":"text"})", R"("content":["text"])").text ==
          "content: expected an object, got array");
    CHECK(body_failure(R"("content":{"type":"text"})", R"("content":{"type":"text","attachments":{}})").text ==
          "content.attachments: expected an array, got object");
    CHECK(body_failure(R"("sender":{"id":"whatsapp:15551234567"})",
                       R"("sender":{"id":"whatsapp:15551234567","identities":["phone:+1",7]})")
              .text == "sender.identities[1]: expected a string, got number");
    CHECK(body_failure(R"("content":{"type":"text"})",
                       R"("content":{"type":"image","attachments":[{"type":"image","media_id":"1","size":-1}]})")
              .text == "content.attachments[0].size: expected a non-negative integer, got number");
    CHECK(body_failure(R"("content":{"type":"text"})", R"("content":{"type":"text","text":true})").code ==
          ErrorCode::wrong_type);
}

TEST_CASE("missing required fields") {
    CHECK(body_failure(R"("content":{"type":"text"},)", "").text == "content: required, missing");
    CHECK(body_failure(R"("content":{"type":"text"})", R"("content":{})").text == "content.type: required, missing");
    CHECK(body_failure(R"("sender":{"id":"whatsapp:15551234567"})", R"("sender":{"id":null})").text ==
          "sender.id: required, got null");
    CHECK(body_failure(R"("sender":{"id":"whatsapp:15551234567"})", R"("sender":null)").text ==
          "sender: required, got null");
    const auto f = body_failure(R"(,"platform":{"message_id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgASGBQzQTdCRDU3"})", "");
    CHECK(f.code == ErrorCode::missing_field);
    CHECK(f.text == "platform: required on inbound messages");
    CHECK(body_failure(R"("content":{"type":"text"})", R"("content":{"type":"location"})").text ==
          "content.location: required when content.type is location");
    CHECK(body_failure(R"("content":{"type":"text"})", R"("content":{"type":"image","attachments":[{"type":"image"}]})")
              .text == "content.attachments[0]: needs url or media_id");
}

TEST_CASE("bad values") {
    CHECK(body_failure(R"("direction":"inbound")", R"("direction":"sideways")").text ==
          R"(direction: expected one of inbound, outbound, got "sideways")");
    CHECK(body_failure(R"("received_at":"2024-05-01T12:34:56.789Z")", R"("received_at":"2024-02-30T00:00:00Z")")
              .text == R"(received_at: not an RFC 3339 date-time: "2024-02-30T00:00:00Z")");
    CHECK(body_failure(R"("id":"0190a6e2-3b4c-7d5e-8f60-718293a4b5c6")", R"("id":"")").text ==
          "id: must not be empty");
    CHECK(body_failure(R"("id":"0190a6e2-3b4c-7d5e-8f60-718293a4b5c6")", R"("id":"a\u0001b")").text ==
          "id: must not contain control characters");
    CHECK(body_failure(R"("sender":{"id":"whatsapp:15551234567"})", R"("sender":{"id":"15551234567"})").text ==
          R"(sender.id: not an identity string (scheme:value): "15551234567")");
    CHECK(body_failure(R"("name":"whatsapp-eu")", R"("name":"whatsapp eu")").text ==
          R"(channel.name: must match [A-Za-z0-9._-]+, got "whatsapp eu")");
    CHECK(body_failure(R"("schema_version":1)", R"("schema_version":0)").text == "schema_version: must be >= 1");
    CHECK(body_failure(R"("received_at")", R"("language_confidence":1.5,"received_at")").text ==
          "language_confidence: out of range 0..1: 1.5");
    CHECK(body_failure(R"("received_at")", R"("language":"english!","received_at")").text ==
          R"(language: not a BCP 47 language tag: "english!")");
    CHECK(body_failure(R"("received_at")", R"("route":{"target":"robot","priority":1},"received_at")").text ==
          R"(route.target: expected one of ai, human, got "robot")");
    CHECK(body_failure(R"("received_at")", R"("sentiment":{"label":"positive","score":-2},"received_at")").text ==
          "sentiment.score: out of range -1..1: -2");
    CHECK(body_failure(R"("content":{"type":"text"})",
                       R"("content":{"type":"location","location":{"lat":91,"lon":0}})")
              .text == "content.location.lat: out of range -90..90: 91");
    CHECK(body_failure(R"("content":{"type":"text"})",
                       R"("content":{"type":"document","attachments":[{"type":"document","url":"u","sha256":"abc"}]})")
              .text == "content.attachments[0].sha256: expected 64 hex digits");
}

TEST_CASE("a key twice in one object is refused") {
    auto f = body_failure(R"("direction":"inbound")", R"("direction":"inbound","direction":"outbound")");
    CHECK(f.code == ErrorCode::duplicate_key);
    CHECK(f.text == "direction: key appears twice");
    CHECK(body_failure(R"("id":"whatsapp:15551234567")", R"("id":"whatsapp:15551234567","id":"whatsapp:2")").text ==
          "sender.id: key appears twice");
    CHECK(body_failure(R"("received_at")", R"("x":1,"x":2,"received_at")").text == "x: key appears twice");
}

TEST_CASE("a body over the size limit is refused before parsing") {
    kafka::Record r = good();
    r.value.insert(r.value.size() - 1, ",\"pad\":\"" + std::string(2 * 1024 * 1024, 'a') + "\"");
    auto f = failure(r);
    CHECK(f.code == ErrorCode::too_large);
    CHECK(f.text == "body: " + std::to_string(r.value.size()) + " bytes, over the limit of 1048576");

    DecodeOptions small;
    small.max_body_bytes = 100;
    CHECK(failure(good(), small).text == "body: " + std::to_string(good().value.size()) + " bytes, over the limit of 100");
}

TEST_CASE("invalid UTF-8 in a string is refused, naming the field") {
    kafka::Record r = good();
    r.value.replace(r.value.find(R"("type":"text")"), 13, "\"type\":\"text\",\"text\":\"caf\xC3\x28\"");
    auto f = failure(r);
    CHECK(f.code == ErrorCode::bad_utf8);
    CHECK(f.text == "content.text: invalid UTF-8 at offset " + std::to_string(r.value.find("\xC3\x28")));

    for (const std::string bad : {"\xED\xA0\x80", "\xC0\xAF", "\xF4\x90\x80\x80", "\xFF", "\xE2\x82"}) {
        kafka::Record b = good();
        b.value.replace(b.value.find("whatsapp-eu"), 11, "wa" + bad);
        CHECK(failure(b).code == ErrorCode::bad_utf8);
    }

    // \u escapes must decode to Unicode scalar values: a lone surrogate does not.
    f = body_failure(R"("type":"text")", R"("type":"text","text":"a\udc00b")");
    CHECK(f.code == ErrorCode::bad_utf8);
    CHECK(f.text.rfind("content.text: \\u escape is not a Unicode scalar value (lone surrogate)", 0) == 0);
    CHECK(body_failure(R"("type":"text")", R"("type":"text","text":"\ud83d")").code == ErrorCode::bad_json);
    auto ok = decode(with_body_edit(R"("type":"text")", R"("type":"text","text":"\ud83d\ude00 \u00e9\u0000")"));
    REQUIRE(ok.ok());
    CHECK(*ok->content.text == std::string("\xF0\x9F\x98\x80 \xC3\xA9\0", 8));
}

TEST_CASE("deep nesting is refused without recursion, even far beyond the limit") {
    for (const std::size_t depth : {63u, 100u, 100000u}) {
        std::string payload = std::string(depth, '[') + std::string(depth, ']');
        kafka::Record r = with_body_edit(R"("platform":{)", R"("platform":{"payload":)" + payload + ",");
        auto res = decode(r);
        if (depth + 2 <= 64) {
            CHECK(res.ok());
            continue;
        }
        REQUIRE_FALSE(res.ok());
        CHECK(res.error().code == ErrorCode::too_deep);
        CHECK(res.error().field.rfind("platform.payload[0][0]", 0) == 0);
        CHECK(res.error().message.rfind("nested deeper than 64 levels at offset ", 0) == 0);
    }
    DecodeOptions shallow;
    shallow.max_depth = 1;
    CHECK(failure(good(), shallow).text == "channel: nested deeper than 1 levels at offset 74");

    // Objects too, and a long path is cut in the message.
    std::string objects;
    for (int i = 0; i < 5000; ++i) objects += R"({"a":)";
    objects += "1" + std::string(5000, '}');
    auto f = failure(with_body_edit(R"("platform":{)", R"("platform":{"payload":)" + objects + ","));
    CHECK(f.code == ErrorCode::too_deep);
    CHECK(f.text.size() < 300);
}
