// Formatting and collection of load-time diagnostics.
#include "config/diagnostic.h"

#include <algorithm>
#include <set>
#include <utility>

namespace omnibus::config {

std::string Diagnostic::to_string() const {
    std::string out = file;
    if (position.known()) {
        out += ':';
        out += std::to_string(position.line);
        out += ':';
        out += std::to_string(position.column);
    }
    out += ": ";
    out += message;
    return out;
}

void Reporter::error(Position where, std::string message) {
    // A diagnostic is one line whatever the file held: control characters
    // echoed from a key or value are shown escaped.
    std::string line;
    line.reserve(message.size());
    for (const char c : message) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '\n') {
            line += "\\n";
        } else if (c == '\t') {
            line += "\\t";
        } else if (u < 0x20 || u == 0x7f) {
            static constexpr char hex[] = "0123456789abcdef";
            line += "\\x";
            line += hex[u >> 4];
            line += hex[u & 0xf];
        } else {
            line += c;
        }
    }
    diagnostics_.push_back(Diagnostic{file_, where, std::move(line)});
}

std::vector<Diagnostic> Reporter::take_sorted() && {
    std::vector<Diagnostic> out = std::move(diagnostics_);
    std::stable_sort(out.begin(), out.end(),
                     [](const Diagnostic& a, const Diagnostic& b) { return a.position < b.position; });
    std::set<std::pair<Position, std::string>> seen;
    std::vector<Diagnostic> unique;
    unique.reserve(out.size());
    for (auto& d : out) {
        if (seen.emplace(d.position, d.message).second) unique.push_back(std::move(d));
    }
    return unique;
}

}  // namespace omnibus::config
