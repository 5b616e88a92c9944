// Small HTTP text rules the edge applies: case-insensitive names, tokens,
// safe header values, channel names, the Date header. Pure functions.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include "encoding/http_token.h"

namespace omnibus::edge {

using encoding::iequals;   // ASCII case-insensitive equality (header names, Expect values)
using encoding::is_token;  // an RFC 9110 token: header names and methods

// No CR, LF or NUL: a value that cannot split a response.
bool is_safe_header_value(std::string_view s);

// [a-z0-9][a-z0-9_-]{0,62}: channel names appear in URLs and metric labels.
bool is_channel_name(std::string_view s);

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110 IMF-fixdate), whatever the locale.
std::string http_date(std::time_t t);

}  // namespace omnibus::edge
