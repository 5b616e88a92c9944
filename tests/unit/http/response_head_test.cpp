// Response header lines as libcurl hands them over → the final response's fields.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "http/response_head.h"

using omnibus::http::ResponseHead;
using Fields = std::vector<std::pair<std::string, std::string>>;

TEST_CASE("fields keep their order and duplicates, names lower-cased, values trimmed") {
    ResponseHead h(64 * 1024);
    for (const char* line : {"HTTP/1.1 429 Too Many Requests\r\n", "Retry-After: 7\r\n", "Set-Cookie:a=1\r\n",
                             "set-cookie: \t b=2 \t\r\n", "X-Empty:\r\n", "\r\n"})
        REQUIRE(h.feed(line));
    CHECK(h.fields() == Fields{{"retry-after", "7"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"x-empty", ""}});
}

TEST_CASE("only the final response's fields are kept, not those of 1xx or a proxy's CONNECT") {
    ResponseHead h(64 * 1024);
    for (const char* line :
         {"HTTP/1.1 200 Connection established\r\n", "Proxy-Agent: squid\r\n", "\r\n", "HTTP/1.1 100 Continue\r\n",
          "X-Interim: yes\r\n", "\r\n", "HTTP/2 201\r\n", "content-type: application/json\r\n", "\r\n"})
        REQUIRE(h.feed(line));
    CHECK(h.fields() == Fields{{"content-type", "application/json"}});
}

TEST_CASE("folded continuation lines join the previous value") {
    ResponseHead h(64 * 1024);
    for (const char* line : {"HTTP/1.1 200 OK\r\n", "X-Long: one\r\n", "   two\r\n", "\tthree \r\n", "X-Next: n\r\n"})
        REQUIRE(h.feed(line));
    CHECK(h.fields() == Fields{{"x-long", "one two three"}, {"x-next", "n"}});
}

TEST_CASE("lines that are not fields are ignored") {
    ResponseHead h(64 * 1024);
    for (const char* line : {"HTTP/1.1 200 OK\r\n", "  orphan continuation\r\n", "no colon here\r\n", ": no name\r\n",
                             "Bad Name : x\r\n", "Bad\rName: z\r\n", "\xac\xafP/2: w\r\n", "Good: y\n"})
        REQUIRE(h.feed(line));
    CHECK(h.fields() == Fields{{"good", "y"}});
}

TEST_CASE("more header bytes than allowed, interim responses included, are refused") {
    ResponseHead h(40);
    CHECK(h.feed("HTTP/1.1 100 Continue\r\n"));  // 23 bytes
    CHECK(h.feed("\r\n"));                       // 25
    CHECK_FALSE(h.feed("HTTP/1.1 200 OK\r\n"));  // 42 > 40
    ResponseHead big(1024);
    CHECK(big.feed("HTTP/1.1 200 OK\r\n"));
    CHECK_FALSE(big.feed("X-Huge: " + std::string(2000, 'a') + "\r\n"));
    CHECK(big.fields().empty());
}
