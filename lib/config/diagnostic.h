// Load-time diagnostics: where a configuration file is wrong and why, as FILE:LINE:COL: message.
#pragma once

#include <compare>
#include <cstddef>
#include <string>
#include <vector>

namespace omnibus::config {

// A place in a configuration file, 1-based. Line 0 means "the file as a whole"
// (it could not be read, or the YAML parser did not say where).
struct Position {
    int line = 0;
    int column = 0;

    bool known() const { return line > 0; }
    friend auto operator<=>(const Position&, const Position&) = default;
};

struct Diagnostic {
    std::string file;
    Position position;
    std::string message;

    // "FILE:LINE:COL: message", or "FILE: message" when the position is unknown.
    std::string to_string() const;
    friend bool operator==(const Diagnostic&, const Diagnostic&) = default;
};

// Collects every error of one load, so a user fixes a file in one pass rather
// than one error per run. Cross-field checks declared on a Spec report here too.
class Reporter {
public:
    explicit Reporter(std::string file) : file_(std::move(file)) {}

    void error(Position where, std::string message);

    const std::string& file() const { return file_; }
    std::size_t count() const { return diagnostics_.size(); }
    const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }

    // Sorted by position (file order reads best), exact repeats removed: an
    // aliased YAML node is visited once per alias and would repeat its errors.
    std::vector<Diagnostic> take_sorted() &&;

private:
    std::string file_;
    std::vector<Diagnostic> diagnostics_;
};

}  // namespace omnibus::config
