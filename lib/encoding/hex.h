// Hexadecimal digits: the one table and decoder used for signatures, ids and
// percent-decoding (header-only; no library to link).
#pragma once

namespace omnibus::encoding {

inline constexpr char kHexDigits[] = "0123456789abcdef";

// The value of one hex digit (either case), or -1 when `c` is not one.
constexpr int hex_digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace omnibus::encoding
