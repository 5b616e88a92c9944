// Header lines of a response → the final response's fields (see response_head.h).
#include "http/response_head.h"

#include "encoding/http_token.h"

namespace omnibus::http {
namespace {

bool is_ows(char c) { return c == ' ' || c == '\t'; }


std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

bool ResponseHead::feed(std::string_view line) {
    bytes_ += line.size();
    if (bytes_ > max_bytes_) return false;
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty()) return true;
    if (line.substr(0, 5) == "HTTP/") {
        fields_.clear();
        return true;
    }
    if (is_ows(line.front())) {
        std::string_view more = trim(line);
        if (!fields_.empty() && !more.empty()) {
            std::string& value = fields_.back().second;
            if (!value.empty()) value += ' ';
            value += more;
        }
        return true;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return true;
    std::string_view raw_name = line.substr(0, colon);
    if (!encoding::is_token(raw_name)) return true;  // not a field ("name : value" is malformed too, RFC 9112 5.1)
    std::string name(raw_name);
    for (char& c : name)
        c = encoding::ascii_lower(c);
    fields_.emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
    return true;
}

}  // namespace omnibus::http
