// The markdown configuration reference, generated from the same Specs that
// validate the file (docs/configuration.md is this output; CI diffs it).
#pragma once

#include <string>
#include <string_view>

#include "config/spec.h"

namespace omnibus::config {

// One heading per section (dotted path) and per block type, each with its
// description and a table: option | type | default | required | description
// (range, allowed values and example folded into the description), then the
// value formats (durations, sizes, addresses, substitutions). Options appear
// in declaration order and block types in BlockTypes::names order, so the
// output is deterministic.
std::string render_reference(const Spec& root, std::string_view title = "Configuration reference");

}  // namespace omnibus::config
