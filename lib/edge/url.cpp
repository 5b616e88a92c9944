// Request-target handling for the edge (see url.h).
#include "edge/url.h"

#include "encoding/hex.h"

namespace omnibus::edge {

Target split_target(std::string_view target) {
    Target t;
    auto hash = target.find('#');
    if (hash != std::string_view::npos) target = target.substr(0, hash);
    auto q = target.find('?');
    if (q == std::string_view::npos) {
        t.path = target;
    } else {
        t.path = target.substr(0, q);
        t.query = target.substr(q + 1);
    }
    return t;
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '%' && i + 2 < text.size()) {
            int hi = encoding::hex_digit_value(text[i + 1]);
            int lo = encoding::hex_digit_value(text[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                continue;
            }
        }
        out += (plus_is_space && c == '+') ? ' ' : c;
    }
    return out;
}

QueryParams parse_query(std::string_view query) {
    QueryParams params;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view piece = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (piece.empty()) continue;
        auto eq = piece.find('=');
        if (eq == std::string_view::npos) {
            params.emplace_back(percent_decode(piece, true), std::string{});
        } else {
            params.emplace_back(percent_decode(piece.substr(0, eq), true), percent_decode(piece.substr(eq + 1), true));
        }
    }
    return params;
}

}  // namespace omnibus::edge
