// Reading a whole, small file in one go, with the errno of a failure, for the
// configuration file itself and for ${file:/path} substitutions.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace omnibus::config {

struct FileContent {
    std::optional<std::string> text;  // set on success
    int error = 0;                    // errno on failure (EFBIG when over the limit)
};

// Refuses directories (EISDIR) and files over `max_bytes` (EFBIG), so a typo
// like ${file:/dev/zero} fails instead of eating memory.
FileContent read_text_file(const std::string& path, std::size_t max_bytes);

}  // namespace omnibus::config
