// Parsers and formatters for the text forms of option values.
#include "config/value.h"

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace omnibus::config {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

enum class Digits { none, overflow, ok };

// Reads the leading run of decimal digits of `text` into `out` and advances
// `text` past them.
Digits take_unsigned(std::string_view& text, std::uint64_t& out) {
    std::size_t n = 0;
    while (n < text.size() && is_digit(text[n])) ++n;
    if (n == 0) return Digits::none;
    auto [end, ec] = std::from_chars(text.data(), text.data() + n, out);
    text.remove_prefix(n);
    return ec == std::errc() ? Digits::ok : Digits::overflow;
}

bool checked_mul_add(std::uint64_t a, std::uint64_t b, std::uint64_t add, std::uint64_t limit, std::uint64_t& out) {
    if (b != 0 && a > limit / b) return false;
    std::uint64_t product = a * b;
    if (product > limit - add) return false;
    out = product + add;
    return true;
}

bool is_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '-' || c == '_';
}

bool is_ipv6_char(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

const char* const kAddressForms = "an address such as '127.0.0.1:9090', '[::1]:9090' or ':8080'";

}  // namespace

std::string Address::to_string() const {
    std::string out;
    if (host.find(':') != std::string::npos) {
        out = "[" + host + "]";
    } else {
        out = host;
    }
    out += ':';
    out += std::to_string(port);
    return out;
}

Parsed<bool> parse_boolean(std::string_view text) {
    if (text == "true" || text == "True" || text == "TRUE") return {true, {}};
    if (text == "false" || text == "False" || text == "FALSE") return {false, {}};
    return {std::nullopt, "expected true or false"};
}

Parsed<std::int64_t> parse_integer(std::string_view text) {
    // from_chars refuses a leading '+', which YAML users write.
    if (text.size() > 1 && text[0] == '+' && is_digit(text[1])) text.remove_prefix(1);
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || end != text.data() + text.size()) return {std::nullopt, "expected an integer"};
    if (ec == std::errc::result_out_of_range) return {std::nullopt, "expected an integer that fits in 64 bits"};
    if (ec != std::errc()) return {std::nullopt, "expected an integer"};
    return {v, {}};
}

Parsed<double> parse_real(std::string_view text) {
    if (text.size() > 1 && text[0] == '+' && (is_digit(text[1]) || text[1] == '.')) text.remove_prefix(1);
    double v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v)) {
        return {std::nullopt, "expected a number"};
    }
    return {v, {}};
}

Parsed<std::chrono::milliseconds> parse_duration(std::string_view text) {
    const char* const expected = "expected a duration with a unit (ms, s, m, h) such as '250ms', '30s' or '1h30m'";
    if (text == "0") return {std::chrono::milliseconds(0), {}};
    if (text.empty()) return {std::nullopt, expected};
    const auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t total = 0;
    while (!text.empty()) {
        std::uint64_t amount = 0;
        const Digits digits = take_unsigned(text, amount);
        if (digits == Digits::none) return {std::nullopt, expected};
        if (digits == Digits::overflow) return {std::nullopt, "duration is too long"};
        std::uint64_t unit = 0;
        if (text.starts_with("ms")) {
            unit = 1;
            text.remove_prefix(2);
        } else if (text.starts_with("s")) {
            unit = 1000;
            text.remove_prefix(1);
        } else if (text.starts_with("m")) {
            unit = 60'000;
            text.remove_prefix(1);
        } else if (text.starts_with("h")) {
            unit = 3'600'000;
            text.remove_prefix(1);
        } else {
            return {std::nullopt, expected};
        }
        if (!checked_mul_add(amount, unit, total, limit, total)) return {std::nullopt, "duration is too long"};
    }
    return {std::chrono::milliseconds(static_cast<std::int64_t>(total)), {}};
}

Parsed<std::uint64_t> parse_size(std::string_view text) {
    const char* const expected = "expected a size in bytes such as '512', '64KiB', '1MiB' or '10MB'";
    std::uint64_t amount = 0;
    const Digits digits = take_unsigned(text, amount);
    if (digits == Digits::none) return {std::nullopt, expected};
    if (digits == Digits::overflow) return {std::nullopt, "size is too large"};
    while (text.starts_with(' ')) text.remove_prefix(1);
    struct Unit {
        std::string_view name;
        std::uint64_t factor;
    };
    static constexpr std::array<Unit, 11> units{{{"", 1},
                                                 {"B", 1},
                                                 {"kB", 1000},
                                                 {"KB", 1000},
                                                 {"MB", 1000'000},
                                                 {"GB", 1000'000'000},
                                                 {"TB", 1000'000'000'000},
                                                 {"KiB", 1ULL << 10},
                                                 {"MiB", 1ULL << 20},
                                                 {"GiB", 1ULL << 30},
                                                 {"TiB", 1ULL << 40}}};
    for (const Unit& u : units) {
        if (text == u.name) {
            std::uint64_t bytes = 0;
            if (!checked_mul_add(amount, u.factor, 0, std::numeric_limits<std::uint64_t>::max(), bytes)) {
                return {std::nullopt, "size is too large"};
            }
            return {bytes, {}};
        }
    }
    return {std::nullopt, expected};
}

Parsed<Address> parse_address(std::string_view text) {
    const std::string expected = std::string("expected ") + kAddressForms;
    Address out;
    std::string_view port_text;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return {std::nullopt, expected};
        const std::string_view host = text.substr(1, close - 1);
        if (host.empty() || host.find(':') == std::string_view::npos) return {std::nullopt, expected};
        for (char c : host) {
            if (!is_ipv6_char(c)) return {std::nullopt, expected};
        }
        if (close + 1 >= text.size() || text[close + 1] != ':') {
            return {std::nullopt, "expected a port after the IPv6 address, e.g. '[::1]:9090'"};
        }
        out.host = std::string(host);
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return {std::nullopt, expected};
        const std::string_view host = text.substr(0, colon);
        if (host.find(':') != std::string_view::npos) {
            return {std::nullopt, "expected an IPv6 address in brackets, e.g. '[::1]:9090'"};
        }
        for (char c : host) {
            if (!is_host_char(c)) return {std::nullopt, expected};
        }
        out.host = std::string(host);
        port_text = text.substr(colon + 1);
    }
    std::uint64_t port = 0;
    std::string_view rest = port_text;
    if (take_unsigned(rest, port) != Digits::ok || !rest.empty() || port > 65535) {
        return {std::nullopt, "expected a port from 0 to 65535 after the ':'"};
    }
    out.port = static_cast<std::uint16_t>(port);
    return {std::move(out), {}};
}

std::string format_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms == 0) return "0s";
    std::string out;
    if (ms < 0) {
        // Only reachable for a negative default declared in code; keep it readable.
        return std::to_string(ms) + "ms";
    }
    const std::array<std::pair<std::int64_t, const char*>, 4> units{
        {{3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}}};
    for (const auto& [factor, name] : units) {
        if (ms >= factor) {
            out += std::to_string(ms / factor);
            out += name;
            ms %= factor;
        }
    }
    return out;
}

std::string format_size(std::uint64_t bytes) {
    if (bytes == 0) return "0";
    const std::array<std::pair<std::uint64_t, const char*>, 8> units{{{1ULL << 40, "TiB"},
                                                                      {1ULL << 30, "GiB"},
                                                                      {1ULL << 20, "MiB"},
                                                                      {1ULL << 10, "KiB"},
                                                                      {1000'000'000'000, "TB"},
                                                                      {1000'000'000, "GB"},
                                                                      {1000'000, "MB"},
                                                                      {1000, "kB"}}};
    for (const auto& [factor, name] : units) {
        if (bytes % factor == 0) return std::to_string(bytes / factor) + name;
    }
    return std::to_string(bytes);
}

std::string format_real(double v) {
    std::array<char, 64> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    if (ec != std::errc()) return std::to_string(v);
    return std::string(buf.data(), end);
}

bool less_than(const Value& a, const Value& b) {
    if (a.index() != b.index()) return false;
    if (const auto* x = std::get_if<std::int64_t>(&a)) return *x < std::get<std::int64_t>(b);
    if (const auto* x = std::get_if<std::uint64_t>(&a)) return *x < std::get<std::uint64_t>(b);
    if (const auto* x = std::get_if<double>(&a)) return *x < std::get<double>(b);
    if (const auto* x = std::get_if<std::chrono::milliseconds>(&a)) return *x < std::get<std::chrono::milliseconds>(b);
    return false;
}

std::string format_value(const Value& v) {
    struct Formatter {
        std::string operator()(std::monostate) const { return ""; }
        std::string operator()(bool b) const { return b ? "true" : "false"; }
        std::string operator()(std::int64_t i) const { return std::to_string(i); }
        std::string operator()(std::uint64_t bytes) const { return format_size(bytes); }
        std::string operator()(double d) const { return format_real(d); }
        std::string operator()(const std::string& s) const { return s; }
        std::string operator()(const Secret&) const { return "***"; }
        std::string operator()(std::chrono::milliseconds d) const { return format_duration(d); }
        std::string operator()(const Address& a) const { return a.to_string(); }
        std::string operator()(const std::vector<std::string>& list) const {
            std::string out = "[";
            for (std::size_t i = 0; i < list.size(); ++i) {
                if (i > 0) out += ", ";
                out += list[i];
            }
            return out + "]";
        }
        std::string operator()(const SecretMap& map) const {
            std::string out = "{";
            for (auto it = map.begin(); it != map.end(); ++it) {
                if (it != map.begin()) out += ", ";
                out += it->first + ": ***";
            }
            return out + "}";
        }
    };
    return std::visit(Formatter{}, v);
}

}  // namespace omnibus::config
