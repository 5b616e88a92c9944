// The text forms of option values: each parser accepts what the reference
// documents, refuses the rest without echoing the input, and round-trips
// through its formatter.
#include <catch2/catch.hpp>

#include "config/value.h"

using namespace omnibus;
using namespace omnibus::config;
using namespace std::chrono_literals;

TEST_CASE("durations need a unit and combine units") {
    CHECK(parse_duration("250ms").value == 250ms);
    CHECK(parse_duration("5s").value == 5s);
    CHECK(parse_duration("1m").value == 1min);
    CHECK(parse_duration("2h").value == 2h);
    CHECK(parse_duration("1h30m").value == 90min);
    CHECK(parse_duration("0").value == 0ms);

    for (const char* bad : {"5", "", "5 s", "-5s", "1.5s", "5d", "s", "5sec", "ms"}) {
        INFO(bad);
        auto p = parse_duration(bad);
        CHECK_FALSE(p.value);
        CHECK(p.error.find("expected a duration") != std::string::npos);
    }
    CHECK(parse_duration("99999999999999999999h").error == "duration is too long");
    CHECK(parse_duration("9999999999999999h").error == "duration is too long");
}

TEST_CASE("sizes take bytes, SI and IEC units") {
    CHECK(parse_size("512").value == 512u);
    CHECK(parse_size("512B").value == 512u);
    CHECK(parse_size("64KiB").value == 65536u);
    CHECK(parse_size("1MiB").value == 1048576u);
    CHECK(parse_size("10MB").value == 10'000'000u);
    CHECK(parse_size("2 GiB").value == 2ULL << 30);
    CHECK(parse_size("1kB").value == 1000u);

    for (const char* bad : {"", "1.5MiB", "-1", "10mb", "10 M", "KiB", "1 KiBs"}) {
        INFO(bad);
        CHECK_FALSE(parse_size(bad).value);
    }
    CHECK(parse_size("100000000TiB").error == "size is too large");
}

TEST_CASE("addresses: host:port, bracketed IPv6, all interfaces") {
    auto a = parse_address("127.0.0.1:9090");
    REQUIRE(a.value);
    CHECK(a.value->host == "127.0.0.1");
    CHECK(a.value->port == 9090);

    a = parse_address("[::1]:9090");
    REQUIRE(a.value);
    CHECK(a.value->host == "::1");
    CHECK(a.value->to_string() == "[::1]:9090");

    a = parse_address(":8080");
    REQUIRE(a.value);
    CHECK(a.value->host.empty());
    CHECK(a.value->port == 8080);
    CHECK(a.value->to_string() == ":8080");

    CHECK(parse_address("kafka-1.internal:0").value->port == 0);
    CHECK(parse_address("h:65535").value->port == 65535);

    CHECK(parse_address("h:65536").error == "expected a port from 0 to 65535 after the ':'");
    CHECK(parse_address("h:").error == "expected a port from 0 to 65535 after the ':'");
    CHECK(parse_address("h:80x").error == "expected a port from 0 to 65535 after the ':'");
    CHECK(parse_address("::1:9090").error == "expected an IPv6 address in brackets, e.g. '[::1]:9090'");
    CHECK(parse_address("[::1]").error == "expected a port after the IPv6 address, e.g. '[::1]:9090'");
    for (const char* bad : {"localhost", "", "[]:80", "[nothex]:80", "bad host:80", "[::1:80"}) {
        INFO(bad);
        CHECK_FALSE(parse_address(bad).value);
    }
}

TEST_CASE("booleans are true or false, never yes/no") {
    CHECK(parse_boolean("true").value == true);
    CHECK(parse_boolean("False").value == false);
    for (const char* bad : {"yes", "no", "on", "1", ""}) {
        INFO(bad);
        CHECK(parse_boolean(bad).error == "expected true or false");
    }
}

TEST_CASE("integers are 64-bit decimal and reals are finite") {
    CHECK(parse_integer("42").value == 42);
    CHECK(parse_integer("+42").value == 42);
    CHECK(parse_integer("-7").value == -7);
    CHECK(parse_integer("9223372036854775807").value == INT64_MAX);
    CHECK(parse_integer("9223372036854775808").error == "expected an integer that fits in 64 bits");
    for (const char* bad : {"", "six", "1.0", "0x10", "1e3", "+", "-"}) {
        INFO(bad);
        CHECK(parse_integer(bad).error == "expected an integer");
    }
    CHECK(parse_real("0.25").value == 0.25);
    CHECK(parse_real("1e3").value == 1000.0);
    CHECK(parse_real("-2").value == -2.0);
    for (const char* bad : {"", "nan", "inf", "1e999", "half", ".inf"}) {
        INFO(bad);
        CHECK(parse_real(bad).error == "expected a number");
    }
}

TEST_CASE("formatters give the canonical form the parsers read back") {
    CHECK(format_duration(90min) == "1h30m");
    CHECK(format_duration(1500ms) == "1s500ms");
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_size(65536) == "64KiB");
    CHECK(format_size(10'000'000) == "10MB");
    CHECK(format_size(1000) == "1kB");
    CHECK(format_size(513) == "513");
    CHECK(format_real(0.5) == "0.5");
    for (std::chrono::milliseconds d : std::vector<std::chrono::milliseconds>{90min, 1500ms, 250ms, 2h, 0ms}) {
        CHECK(parse_duration(format_duration(d)).value == d);
    }
    for (std::uint64_t s : {0ULL, 1ULL, 1000ULL, 65536ULL, 3ULL << 30, 1000'000'000'000ULL}) {
        CHECK(parse_size(format_size(s)).value == s);
    }

    CHECK(format_value(Value(Secret("hunter2"))) == "***");
    CHECK(format_value(Value(SecretMap{{"sasl.password", Secret("hunter2")}})) == "{sasl.password: ***}");
    CHECK(format_value(Value(std::vector<std::string>{"a", "b"})) == "[a, b]");
    CHECK(format_value(Value(Address{"::1", 80})) == "[::1]:80");
}
