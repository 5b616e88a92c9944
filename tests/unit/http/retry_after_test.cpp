// Retry-After values and HTTP-dates: the three date forms, delta-seconds, caps, and garbage.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "http/retry_after.h"

using namespace omnibus::http;
using namespace std::chrono;

namespace {

// Sun, 06 Nov 1994 08:49:37 GMT: RFC 9110's example date.
const sys_seconds example = sys_days(year{1994} / November / 6) + hours(8) + minutes(49) + seconds(37);

sys_seconds utc(int y, unsigned m, unsigned d, int h = 0, int min = 0, int s = 0) {
    return sys_days(year{y} / month{m} / day{d}) + hours(h) + minutes(min) + seconds(s);
}

}  // namespace

TEST_CASE("delta-seconds are read as seconds from now") {
    const auto now = example;
    CHECK(parse_retry_after("120", now) == seconds(120));
    CHECK(parse_retry_after("0", now) == seconds(0));
    CHECK(parse_retry_after("007", now) == seconds(7));
    CHECK(parse_retry_after(" \t5 ", now) == seconds(5));
    CHECK(parse_retry_after("86400", now) == seconds(86400));
}

TEST_CASE("absurdly long waits are capped at one day") {
    const auto now = example;
    CHECK(max_retry_after == hours(24));
    CHECK(parse_retry_after("86401", now) == max_retry_after);
    CHECK(parse_retry_after("31536000", now) == max_retry_after);
    CHECK(parse_retry_after("99999999999999999999999999999999", now) == max_retry_after);
    CHECK(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now) == max_retry_after);
    CHECK(parse_retry_after("Mon, 07 Nov 1994 08:49:38 GMT", now) == max_retry_after);
    CHECK(parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now) == seconds(86400));
}

TEST_CASE("the three HTTP-date forms give the same wait") {
    const auto now = example - seconds(120);
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == seconds(120));
    CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == seconds(120));
    CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", now) == seconds(120));
    CHECK(parse_retry_after("  Sun, 06 Nov 1994 08:49:37 GMT\t", now) == seconds(120));
    CHECK(parse_retry_after("sun, 06 nov 1994 08:49:37 gmt", now) == seconds(120));
    CHECK(parse_retry_after("SUNDAY, 06-NOV-94 08:49:37 GMT", now) == seconds(120));
}

TEST_CASE("a date in the past or right now means retry at once") {
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", example) == seconds(0));
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:36 GMT", example) == seconds(0));
    CHECK(parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", example) == seconds(0));
    CHECK(parse_retry_after("Mon, 01 Jan 1900 00:00:00 GMT", example) == seconds(0));
}

TEST_CASE("a date a fraction of a second ahead rounds up, never retrying early") {
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", example - milliseconds(1500)) == seconds(2));
    CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", example - milliseconds(1)) == seconds(1));
}

TEST_CASE("HTTP-dates are parsed to the second in each form") {
    const auto now = utc(2024, 6, 1);
    CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now) == example);
    CHECK(parse_http_date("Sun Nov  6 08:49:37 1994", now) == example);
    CHECK(parse_http_date("Sun Nov 16 08:49:37 1994", now) == example + days(10));
    CHECK(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT", now) == utc(2024, 2, 29, 23, 59, 59));
    CHECK(parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT", now) == utc(2017, 1, 1));  // leap second
    CHECK(parse_http_date("Tue, 01 Jan 2030 00:00:00 GMT", now) == utc(2030, 1, 1));
}

TEST_CASE("two-digit RFC 850 years more than 50 years ahead belong to the past century") {
    const auto now = utc(2024, 6, 1);
    CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now) == example);
    CHECK(parse_http_date("Tuesday, 01-Jan-30 00:00:00 GMT", now) == utc(2030, 1, 1));
    CHECK(parse_http_date("Sunday, 01-Jan-74 00:00:00 GMT", now) == utc(2074, 1, 1));
    CHECK(parse_http_date("Wednesday, 01-Jan-75 00:00:00 GMT", now) == utc(1975, 1, 1));
    CHECK(parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT", now) == utc(2000, 1, 1));
    // Read in 1994: "44" is 2044 (50 years ahead), "45" is 1945 (2045 would be 51 ahead).
    CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", example) == example);
    CHECK(parse_http_date("Friday, 01-Jan-44 00:00:00 GMT", example) == utc(2044, 1, 1));
    CHECK(parse_http_date("Monday, 01-Jan-45 00:00:00 GMT", example) == utc(1945, 1, 1));
    CHECK(parse_http_date("Monday, 01-Jan-01 00:00:00 GMT", example) == utc(2001, 1, 1));
}

TEST_CASE("impossible dates and times are garbage") {
    const auto now = example;
    CHECK_FALSE(parse_http_date("Wed, 31 Feb 1994 08:49:37 GMT", now));
    CHECK_FALSE(parse_http_date("Wed, 29 Feb 2023 08:49:37 GMT", now));
    CHECK_FALSE(parse_http_date("Sun, 00 Nov 1994 08:49:37 GMT", now));
    CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 24:00:00 GMT", now));
    CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:60:00 GMT", now));
    CHECK_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:61 GMT", now));
    CHECK_FALSE(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT", now));
    CHECK_FALSE(parse_http_date("Sun Nov 32 08:49:37 1994", now));
}

TEST_CASE("anything that is neither delta-seconds nor an HTTP-date is garbage") {
    const auto now = example;
    const char* garbage[] = {
        "",
        "   ",
        "-1",
        "+5",
        "1.5",
        "1e3",
        "0x10",
        "12abc",
        "1 2",
        "soon",
        "tomorrow",
        "NaN",
        "\xd9\xa1\xd9\xa2",                    // Arabic-Indic digits
        "Sun, 06 Nov 1994 08:49:37 UTC",       // only GMT
        "Sun, 06 Nov 1994 08:49:37",           // zone missing
        "Sun, 06 Nov 1994 08:49:37 GMT junk",  // trailing text
        "Sun, 06 Nov 1994 08:49:37 GMT,",
        "Sun, 6 Nov 1994 08:49:37 GMT",        // IMF-fixdate has two-digit days
        "Sun, 06 Nov 94 08:49:37 GMT",         // and four-digit years
        "Sun 06 Nov 1994 08:49:37 GMT",        // comma missing
        "Sun,06 Nov 1994 08:49:37 GMT",        // space missing
        "Sun,  06 Nov 1994 08:49:37 GMT",      // two spaces
        "Sunday, 06 Nov 1994 08:49:37 GMT",    // long day name with IMF-fixdate
        "Sun, 06-Nov-94 08:49:37 GMT",         // short day name with RFC 850
        "Sunday, 06-Nov-1994 08:49:37 GMT",    // RFC 850 has two-digit years
        "Funday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",             // asctime pads one-digit days with a space
        "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 8:49:37 1994",
        "Sun Nov  6 08:49 1994",
        "Sunday Nov  6 08:49:37 1994",
        "2024-06-01T00:00:00Z",                // ISO 8601 is not an HTTP-date
        "Sun, 06 Nov 1994 08:49:37 GMT\r\nX: y",
    };
    for (const char* g : garbage) {
        INFO("value: \"" << g << "\"");
        CHECK_FALSE(parse_retry_after(g, now));
    }
    CHECK_FALSE(parse_retry_after(std::string("5\0", 2), now));
}
