// The `edge:` configuration block: every option of the public HTTP edge,
// declared once (validation, defaults and the reference follow), and the
// conversion of a loaded block to EdgeSettings.
#pragma once

#include "config/section.h"
#include "config/spec.h"
#include "edge/edge_server.h"

namespace omnibus::edge {

config::Spec edge_spec();

// `section` was loaded against edge_spec().
EdgeSettings edge_settings(const config::Section& section);

}  // namespace omnibus::edge
