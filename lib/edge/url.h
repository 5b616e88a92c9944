// Request-target handling for the edge: split path from query, percent-decode,
// parse the query into ordered name/value pairs. Pure functions, no I/O.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omnibus::edge {

using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct Target {
    std::string_view path;   // raw (still percent-encoded), up to '?' or '#'
    std::string_view query;  // raw, after '?', without the fragment; empty when absent
};

// "/webhooks/wa?hub.mode=subscribe#x" → {"/webhooks/wa", "hub.mode=subscribe"}.
Target split_target(std::string_view target);

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, as in query
// strings). A '%' not followed by two hex digits is kept as it is: lenient,
// because a webhook sender's odd encoding must not turn into a lost event.
std::string percent_decode(std::string_view text, bool plus_is_space);

// "a=1&b=x%20y&flag&a=2" → {{"a","1"},{"b","x y"},{"flag",""},{"a","2"}}.
// Empty pieces ("a=1&&b=2") are skipped; names and values are decoded.
QueryParams parse_query(std::string_view query);

}  // namespace omnibus::edge
