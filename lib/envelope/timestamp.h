// Timestamps of the envelope: UTC, millisecond precision, written as RFC 3339.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace omnibus::envelope {

using Timestamp = std::chrono::sys_time<std::chrono::milliseconds>;

// "2024-05-01T12:34:56.789Z": always UTC, always 3 fractional digits, 24 chars.
inline constexpr std::size_t kTimestampLength = 24;

// Writes exactly kTimestampLength chars to out (no NUL). Times before year 0000
// or after 9999 are clamped to those bounds; RFC 3339 cannot express them.
void format_rfc3339(Timestamp t, char* out);
std::string format_rfc3339(Timestamp t);

// Parses an RFC 3339 date-time: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"
// ('t', 'z' and ' ' as separator accepted). The offset is applied, the fraction
// truncated to milliseconds, a leap second (:60) read as the last ms of :59.
// nullopt when malformed, out of range, or outside years 0000..9999 in UTC.
std::optional<Timestamp> parse_rfc3339(std::string_view text);

// Now, truncated to milliseconds.
Timestamp now_ms();

}  // namespace omnibus::envelope
