// HTTP text rules shared by the edge (requests in) and the HTTP client
// (answers from providers): RFC 9110 tokens and ASCII case-insensitive
// comparison (header-only; no library to link).
#pragma once

#include <string_view>

namespace omnibus::encoding {

// RFC 9110 tchar.
constexpr bool is_tchar(char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// An RFC 9110 token: header names and methods.
constexpr bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

constexpr char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// ASCII case-insensitive equality (header names, Expect values).
constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

}  // namespace omnibus::encoding
