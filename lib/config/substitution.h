// ${env:NAME} and ${file:/path} substitution in scalar values, so secrets live
// in the environment or in files (e.g. systemd credentials), never in the YAML.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/text_file.h"

namespace omnibus::config {

// Where substituted values come from; tests and the fuzzer inject their own.
using GetEnv = std::function<std::optional<std::string>(const std::string& name)>;
using ReadFile = std::function<FileContent(const std::string& path)>;

std::optional<std::string> system_getenv(const std::string& name);
// read_text_file() with a 1 MiB limit: secrets, keys and certificate chains fit.
FileContent system_read_file(const std::string& path);

struct Expansion {
    std::string text;          // the value with every reference replaced
    bool substituted = false;  // true when any reference was replaced: `text` must not be echoed
    std::string error;         // set on failure; names the reference, never a substituted value

    bool ok() const { return error.empty(); }
};

// Expands every reference in `raw`:
//   ${env:NAME}   the environment variable NAME (NAME: [A-Za-z_][A-Za-z0-9_]*); unset is an error
//   ${file:/path} the file's content with one trailing "\n" (or "\r\n") removed;
//                 the path must be absolute, so the meaning does not depend on the working directory
//   $${           a literal "${"
// References may be embedded ("Bearer ${env:TOKEN}"). Any other ${...} is an
// error. Substituted text is not expanded again.
Expansion expand(std::string_view raw, const GetEnv& getenv, const ReadFile& read_file);

}  // namespace omnibus::config
