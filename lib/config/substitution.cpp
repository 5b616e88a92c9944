// Expansion of ${env:NAME} and ${file:/path} references in scalar values.
#include "config/substitution.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace omnibus::config {

namespace {

constexpr std::size_t kMaxSubstitutedFile = 1 << 20;

bool valid_env_name(std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        const bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0)) return false;
    }
    return true;
}

void strip_one_newline(std::string& s) {
    if (s.ends_with("\r\n")) {
        s.resize(s.size() - 2);
    } else if (s.ends_with('\n')) {
        s.pop_back();
    }
}

}  // namespace

std::optional<std::string> system_getenv(const std::string& name) {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
}

FileContent system_read_file(const std::string& path) { return read_text_file(path, kMaxSubstitutedFile); }

Expansion expand(std::string_view raw, const GetEnv& getenv, const ReadFile& read_file) {
    Expansion out;
    std::size_t i = 0;
    while (i < raw.size()) {
        if (raw.substr(i).starts_with("$${")) {
            out.text += "${";
            i += 3;
            continue;
        }
        if (!raw.substr(i).starts_with("${")) {
            out.text += raw[i++];
            continue;
        }
        const std::size_t close = raw.find('}', i + 2);
        if (close == std::string_view::npos) {
            out.error = "'${' without a closing '}' (write $${ for a literal ${)";
            return out;
        }
        const std::string_view reference = raw.substr(i, close + 1 - i);
        const std::string_view body = raw.substr(i + 2, close - i - 2);
        if (body.starts_with("env:")) {
            const std::string name(body.substr(4));
            if (!valid_env_name(name)) {
                out.error = "invalid environment variable name in " + std::string(reference);
                return out;
            }
            std::optional<std::string> value = getenv ? getenv(name) : std::nullopt;
            if (!value) {
                out.error = "environment variable '" + name + "' is not set";
                return out;
            }
            out.text += *value;
        } else if (body.starts_with("file:")) {
            const std::string path(body.substr(5));
            if (!path.starts_with('/')) {
                out.error = std::string(reference) + " needs an absolute path";
                return out;
            }
            FileContent content = read_file ? read_file(path) : FileContent{std::nullopt, ENOENT};
            if (!content.text) {
                out.error = "cannot read '" + path + "': " + std::strerror(content.error);
                return out;
            }
            strip_one_newline(*content.text);
            out.text += *content.text;
        } else {
            out.error = "unknown substitution " + std::string(reference) +
                        "; use ${env:NAME} or ${file:/path} (write $${ for a literal ${)";
            return out;
        }
        out.substituted = true;
        i = close + 1;
    }
    return out;
}

}  // namespace omnibus::config
