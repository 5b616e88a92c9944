// "Did you mean ...?" suggestions for misspelt option names, types and values.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace omnibus::config {

// The candidate closest to `typed` by edit distance (a swap of two adjacent
// letters counts as one edit, case is ignored), if it is close enough to be a
// plausible typo: at most 1 edit for names up to 4 letters, 2 up to 8, else 3.
// Ties go to the earlier candidate, so the answer is deterministic.
std::optional<std::string> did_you_mean(std::string_view typed, const std::vector<std::string>& candidates);

}  // namespace omnibus::config
