// Request-target splitting, percent-decoding and query parsing.
#include <catch2/catch.hpp>

#include "edge/url.h"

using namespace omnibus::edge;

TEST_CASE("a target splits into path and query, without the fragment") {
    auto t = split_target("/webhooks/wa?hub.mode=subscribe&x=1#frag");
    CHECK(t.path == "/webhooks/wa");
    CHECK(t.query == "hub.mode=subscribe&x=1");
    t = split_target("/webhooks/wa");
    CHECK(t.path == "/webhooks/wa");
    CHECK(t.query.empty());
    t = split_target("/a?");
    CHECK(t.path == "/a");
    CHECK(t.query.empty());
    t = split_target("/a#x?y");
    CHECK(t.path == "/a");
    CHECK(t.query.empty());
}

TEST_CASE("percent-decoding decodes escapes, '+' only in queries, and keeps broken escapes") {
    CHECK(percent_decode("a%20b%2Fc", false) == "a b/c");
    CHECK(percent_decode("s%C3%A9cret", false) ==
          "s\xc3\xa9"
          "cret");
    CHECK(percent_decode("a+b", false) == "a+b");
    CHECK(percent_decode("a+b", true) == "a b");
    CHECK(percent_decode("100%", true) == "100%");
    CHECK(percent_decode("%zz%4", true) == "%zz%4");
    CHECK(percent_decode("%00x", false) == std::string("\0x", 2));
    CHECK(percent_decode("%e2%82%ac", false) == "\xe2\x82\xac");
}

TEST_CASE("a query string parses into ordered, decoded pairs") {
    auto q = parse_query("hub.mode=subscribe&hub.verify_token=a%26b+c&hub.challenge=1158201444&&flag&a=1&a=2&=v");
    REQUIRE(q.size() == 7);
    CHECK(q[0] == std::pair<std::string, std::string>{"hub.mode", "subscribe"});
    CHECK(q[1] == std::pair<std::string, std::string>{"hub.verify_token", "a&b c"});
    CHECK(q[2].second == "1158201444");
    CHECK(q[3] == std::pair<std::string, std::string>{"flag", ""});
    CHECK(q[4].second == "1");
    CHECK(q[5].second == "2");
    CHECK(q[6] == std::pair<std::string, std::string>{"", "v"});
    CHECK(parse_query("").empty());
    CHECK(parse_query("&&").empty());
    auto eq = parse_query("k=a=b");
    REQUIRE(eq.size() == 1);
    CHECK(eq[0].second == "a=b");
}
