// HTTP text rules: case-insensitive names, tokens, safe values, channel names, dates.
#include <catch2/catch.hpp>

#include "edge/http_text.h"

using namespace omnibus::edge;

TEST_CASE("names compare case-insensitively, ASCII only") {
    CHECK(iequals("Content-Length", "content-length"));
    CHECK(iequals("", ""));
    CHECK_FALSE(iequals("Content-Length", "Content-Lengt"));
    CHECK_FALSE(iequals("\xc3\x89", "\xc3\xa9"));
}

TEST_CASE("tokens, safe header values and channel names") {
    CHECK(is_token("X-Hub-Signature-256"));
    CHECK(is_token("POST"));
    CHECK_FALSE(is_token(""));
    CHECK_FALSE(is_token("Bad Name"));
    CHECK_FALSE(is_token("X:Y"));
    CHECK(is_safe_header_value("sha256=abc; q=1"));
    CHECK_FALSE(is_safe_header_value("a\r\nSet-Cookie: x"));
    CHECK_FALSE(is_safe_header_value(std::string("a\0b", 3)));
    CHECK(is_channel_name("whatsapp-main"));
    CHECK(is_channel_name("tg_2"));
    CHECK(is_channel_name(std::string(63, 'a')));
    CHECK_FALSE(is_channel_name(std::string(64, 'a')));
    CHECK_FALSE(is_channel_name("-wa"));
    CHECK_FALSE(is_channel_name("WA"));
    CHECK_FALSE(is_channel_name("wa/x"));
    CHECK_FALSE(is_channel_name(""));
}

TEST_CASE("the Date header is the IMF-fixdate form") {
    CHECK(http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
    CHECK(http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
}
