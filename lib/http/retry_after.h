// Retry-After (RFC 9110 10.2.3) and HTTP-date (RFC 9110 5.6.7) parsing. Pure: the caller
// passes the clock.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace omnibus::http {

// Longer waits than this are taken as this: a provider asking for a week is treated as asking
// for a day, so a typo or a hostile header cannot park a delivery forever.
inline constexpr std::chrono::seconds max_retry_after{24 * 60 * 60};

// An HTTP-date in any of the three forms a recipient must accept, surrounding spaces and tabs
// allowed; nullopt for anything else (including impossible dates such as 31 Feb):
//   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
//   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"  (two-digit years: the latest year with
//                                                  those digits at most 50 years after `now`'s)
//   asctime      "Sun Nov  6 08:49:37 1994"
// Day and month names are matched case-insensitively; the weekday is not checked against the date.
// Seconds, not system_clock's nanoseconds, which end in 2262.
std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text,
                                                        std::chrono::system_clock::time_point now);

// How long to wait, from `now`, given a Retry-After value: delta-seconds ("120") or an
// HTTP-date. A date in the past gives 0s; a date in the future is rounded up to whole
// seconds; anything above max_retry_after gives max_retry_after (digits that overflow too).
// nullopt for garbage ("", "-1", "1.5", "soon", trailing junk).
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value,
                                                      std::chrono::system_clock::time_point now);

}  // namespace omnibus::http
