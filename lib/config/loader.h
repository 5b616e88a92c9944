// Loading a YAML configuration file against a Spec: every problem found is
// reported as FILE:LINE:COL: message (what `omnibusd --check-config` prints),
// otherwise the resolved Section with defaults filled is returned.
//
// Threads: a load runs entirely on the calling thread (start-up, or the thread
// handling SIGHUP), including the LoadOptions functions and the Spec checks.
// Nothing here logs: the caller prints the diagnostics the way it wants.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/section.h"
#include "config/spec.h"
#include "config/substitution.h"

namespace omnibus::config {

struct LoadOptions {
    GetEnv getenv = system_getenv;        // for ${env:NAME}
    ReadFile read_file = system_read_file;  // for ${file:/path}
};

struct LoadResult {
    std::optional<Section> config;        // set exactly when there are no diagnostics
    std::vector<Diagnostic> diagnostics;  // all of them, in file order

    bool ok() const { return config.has_value(); }
    // Every diagnostic as "FILE:LINE:COL: message\n".
    std::string report() const;
};

// Reads `path` (a missing file is "FILE: cannot read: No such file or directory").
LoadResult load_file(const std::string& path, const Spec& schema, const LoadOptions& options = {});
// `display_name` stands for the file name in diagnostics.
LoadResult load_string(std::string_view text, const std::string& display_name, const Spec& schema,
                       const LoadOptions& options = {});

}  // namespace omnibus::config
