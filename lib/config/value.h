// The typed values an option can hold, and the text forms users write for them
// (durations, sizes, addresses, ...): one parser and one formatter per form.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/secret.h"

namespace omnibus::config {

// A listen or connect address. An empty host means all interfaces (":8080").
struct Address {
    std::string host;  // without the brackets of an IPv6 literal
    std::uint16_t port = 0;

    // "host:port", "[::1]:port" or ":port": the form parse_address() reads back.
    std::string to_string() const;
    friend bool operator==(const Address&, const Address&) = default;
};

// Free-form keys to secret values, e.g. librdkafka properties passed through.
using SecretMap = std::map<std::string, Secret, std::less<>>;

// One option's value. Which alternative is used follows the option's type:
// string and enumeration → std::string, size → uint64_t, duration → milliseconds.
using Value = std::variant<std::monostate, bool, std::int64_t, std::uint64_t, double, std::string, Secret,
                           std::chrono::milliseconds, std::vector<std::string>, Address, SecretMap>;

// The result of parsing one text form. On failure `error` says what was
// expected; it never repeats the input, which may hold a substituted secret.
template <class T>
struct Parsed {
    std::optional<T> value;
    std::string error;
};

// "true" / "false" (also "True", "TRUE", ...). YAML 1.1's yes/no/on/off are
// refused: "country: no" must not silently turn into a boolean.
Parsed<bool> parse_boolean(std::string_view text);
// Decimal, optional sign, 64-bit.
Parsed<std::int64_t> parse_integer(std::string_view text);
// Decimal or exponent notation; must be finite.
Parsed<double> parse_real(std::string_view text);
// One or more <integer><unit> with unit ms, s, m or h: "250ms", "5s", "1h30m".
// A bare number other than "0" is refused: "5" could mean seconds or
// milliseconds, and guessing wrong is a silent 1000x error.
Parsed<std::chrono::milliseconds> parse_duration(std::string_view text);
// Bytes: "512", or an integer with a unit: B, kB/KB, MB, GB, TB (powers of
// 1000) or KiB, MiB, GiB, TiB (powers of 1024), optionally space-separated.
Parsed<std::uint64_t> parse_size(std::string_view text);
// "host:port", "127.0.0.1:9090", "[::1]:9090", or ":8080" for all interfaces.
Parsed<Address> parse_address(std::string_view text);

// Canonical text forms, as shown in the reference and read back by the parsers.
std::string format_duration(std::chrono::milliseconds d);  // "1h30m", "250ms", "0s"
std::string format_size(std::uint64_t bytes);              // "64KiB", "10MB", "512"
std::string format_real(double v);                         // shortest round-trip form
// Orders two values of the same numeric alternative (integer, size, real,
// duration), for range checks; false for anything else.
bool less_than(const Value& a, const Value& b);

// Any value in its canonical form; a Secret (also in a SecretMap) as "***",
// a list as "[a, b]", no value as "".
std::string format_value(const Value& v);

}  // namespace omnibus::config
