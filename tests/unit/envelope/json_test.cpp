// The JSON helpers: UTF-8 checks agree with RapidJSON's, RawJson keeps any
// value as compact JSON, parse is bounded.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/writer.h>

#include <string>
#include <vector>

#include "envelope/json.h"

using namespace omnibus;

namespace {
bool rapidjson_accepts_string(const std::string& bytes) {
    const std::string text = "\"" + bytes + "\"";
    rapidjson::Document d;
    d.Parse<rapidjson::kParseValidateEncodingFlag>(text.data(), text.size());
    return !d.HasParseError();
}
}  // namespace

TEST_CASE("our UTF-8 validator agrees with RapidJSON's on every 1-3 byte sequence and 4-byte leads") {
    // What encode lets through must be what decode accepts.
    std::string s;
    int checked = 0;
    auto check = [&](const std::string& bytes) {
        bool ok = true;
        for (unsigned char c : bytes)
            if (c < 0x20 || c == '"' || c == '\\') ok = false;  // JSON syntax, not encoding
        if (!ok) return;
        ++checked;
        if (json::is_valid_utf8(bytes) != rapidjson_accepts_string(bytes)) FAIL("disagree on " << bytes);
    };
    for (int a = 0x20; a < 0x100; ++a) {
        check(std::string(1, static_cast<char>(a)));
        for (int b = 0x20; b < 0x100; ++b) {
            check({static_cast<char>(a), static_cast<char>(b)});
            if (a >= 0xE0 && a <= 0xEF)
                for (int c : {0x20, 0x7F, 0x80, 0xBF, 0xC0})
                    check({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
            if (a >= 0xF0)
                for (int c : {0x80, 0xBF, 0xC0})
                    for (int d : {0x7F, 0x80, 0xBF})
                        check({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c), static_cast<char>(d)});
        }
    }
    CHECK(checked > 90000);
}

TEST_CASE("ill-formed UTF-8 is replaced by U+FFFD per maximal subpart") {
    auto fix = [](std::string in) {
        std::string out;
        json::append_valid_utf8(in, out);
        return out;
    };
    CHECK(fix("plain ascii") == "plain ascii");
    CHECK(fix("é中😀") == "é中😀");
    CHECK(fix("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
    CHECK(fix("\xF0\x9F\x98") == "\xEF\xBF\xBD");          // truncated 4-byte: one replacement
    CHECK(fix("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate: ED not a valid prefix
    CHECK(fix("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
    CHECK(json::is_valid_utf8(fix(std::string("\x80\x81\xE2\x82\xF4\x90", 6))));
    CHECK(json::invalid_utf8_offset("abcdefghij\xFF") == 10);
    CHECK(json::excerpt("a\x01" "b\xFF") == "a?b?");
    CHECK(json::excerpt(std::string(100, 'x'), 10) == "xxxxxxxxxx...");
}

TEST_CASE("RawJson keeps any JSON value as compact text") {
    auto r = json::RawJson::parse(" { \"a\" : [ 1 , 2.5 , \"x\" ] , \"b\" : null } ");
    REQUIRE(r);
    CHECK(r->text() == R"({"a":[1,2.5,"x"],"b":null})");
    CHECK(json::RawJson::parse("\"just a string\"")->text() == "\"just a string\"");
    CHECK(json::RawJson::parse("12345678901234567890")->text() == "12345678901234567890");  // uint64
    CHECK(json::RawJson::parse("0.1")->text() == "0.1");
    json::ParseError e;
    CHECK_FALSE(json::RawJson::parse("{\"a\":", {}, &e));
    CHECK(e.kind == json::ParseError::Kind::bad_json);
    CHECK_FALSE(json::RawJson::parse("[[[1]]]", json::Limits{1024, 2}, &e));
    CHECK(e.kind == json::ParseError::Kind::too_deep);
    CHECK(e.path == "[0][0]");  // the array that is one level too deep
}

TEST_CASE("parse errors name the path where they stopped") {
    json::LocalDocument<> d;
    json::ParseError e;
    CHECK_FALSE(json::parse(R"({"a":{"b":[1,2,{"c":tru}]}})", d, {}, &e));
    CHECK(e.path == "a.b[2].c");
    CHECK_FALSE(json::parse("{\"a\":[\"ok\",\"\xFF\"]}", d, {}, &e));
    CHECK(e.kind == json::ParseError::Kind::bad_utf8);
    CHECK(e.path == "a[1]");
    CHECK(json::parse(R"({"a":[1,{"b":2}]})", d, {}, &e));
    CHECK(d.doc()["a"][1]["b"].GetInt() == 2);
}

TEST_CASE("numbers are read exactly and hostile ones safely") {
    auto text_of = [](const std::string& json) {
        json::ParseError e;
        auto r = json::RawJson::parse(json, {}, &e);
        return r ? r->text() : "error: " + e.message;
    };
    CHECK(text_of("[0.1,-0.0,5e-324,1.7976931348623157e308,48.8566]") ==
          "[0.1,-0.0,5e-324,1.7976931348623157e308,48.8566]");
    // RapidJSON's writer (Grisu2) is not always shortest, but reads back exactly.
    const std::string third = text_of("[0.30000000000000004]");
    CHECK(third == "[0.30000000000000007]");
    json::LocalDocument<> a, b;
    REQUIRE(json::parse("[0.30000000000000004]", a, {}, nullptr));
    REQUIRE(json::parse(third, b, {}, nullptr));
    CHECK(a.doc()[0].GetDouble() == 0.1 + 0.2);
    CHECK(b.doc()[0].GetDouble() == 0.1 + 0.2);
    CHECK(text_of("[123456789012345678901234567890]") == "[1.2345678901234568e29]");
    CHECK(text_of("[1e-400]") == "[0.0]");
    CHECK(text_of("[2e308]") == "error: number out of range (offset 1)");
    // RapidJSON 1.1.0's full-precision strtod reads out of bounds on this one.
    CHECK(text_of("[0." + std::string(500, '0') + "1]") == "[0.0]");
    CHECK(text_of("[0." + std::string(300, '0') + "1e300]") == "[0.1]");
    CHECK(text_of("[1" + std::string(400, '0') + "]").rfind("error: Number too big", 0) == 0);
}

TEST_CASE("write_string and write_key write what RapidJSON writes, in every position") {
    // The plain path copies strings without escaping; it must agree byte for byte with
    // RapidJSON's own String()/Key(), commas and colons included, for every string that
    // takes it and every one that must not (escapes; valid UTF-8 passes unchanged).
    std::vector<std::string> strings = {"", "a", "hello world", "ce_id", "2026-12-05T11:39:03.123Z",
                                        "caf\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80", "say \"hi\"",
                                        "back\\slash", "tab\there", "line\nbreak", std::string("nul\0in", 6),
                                        "\x1f", "\x7f del", "/slash/", std::string(300, 'x')};
    for (int c = 0; c < 0x20; ++c) strings.push_back(std::string("x") + static_cast<char>(c) + "y");
    // The check reads eight bytes at a time: each kind of byte at every position of two words
    // and the tail after them.
    for (std::string_view odd : {"\"", "\\", "\n", "\x1f", "\x7f", " ", "!", "#", "[", "]", "\xC3\xA9",
                                 "\xE4\xBD\xA0", "\xF0\x9F\x98\x80"})
        for (std::size_t at = 0; at <= 17; ++at)
            strings.push_back(std::string(at, 'a') + std::string(odd) + std::string(19 - at, 'b'));

    rapidjson::StringBuffer ours_buf, theirs_buf;
    json::Writer ours(ours_buf);
    rapidjson::Writer<rapidjson::StringBuffer> theirs(theirs_buf);
    ours.StartArray();
    theirs.StartArray();
    for (const auto& s : strings) {
        json::write_string(ours, s);
        theirs.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        ours.StartObject();
        theirs.StartObject();
        json::write_key(ours, s);
        theirs.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        json::write_string(ours, s);
        theirs.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
        json::write_key(ours, "n");
        theirs.Key("n");
        ours.Int(1);
        theirs.Int(1);
        ours.EndObject();
        theirs.EndObject();
    }
    ours.EndArray();
    theirs.EndArray();
    CHECK(ours.IsComplete());
    CHECK(std::string(ours_buf.GetString()) == std::string(theirs_buf.GetString()));

    // Invalid UTF-8 anywhere in a long string is repaired (U+FFFD), as in a short one.
    for (std::size_t at = 0; at <= 17; ++at) {
        const std::string bad = std::string(at, 'a') + "\xC3(" + std::string(19 - at, 'b');
        rapidjson::StringBuffer buf;
        json::Writer w(buf);
        json::write_string(w, bad);
        CHECK(std::string(buf.GetString()) == "\"" + std::string(at, 'a') + "\xEF\xBF\xBD(" + std::string(19 - at, 'b') + "\"");
    }

    // A lone string at the root is a complete text too.
    rapidjson::StringBuffer root_buf;
    json::Writer root(root_buf);
    json::write_string(root, "plain");
    CHECK(root.IsComplete());
    CHECK(std::string(root_buf.GetString()) == "\"plain\"");
}
