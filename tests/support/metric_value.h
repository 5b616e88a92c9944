// Reads one series from a registry's Prometheus text, for tests.
#pragma once

#include <string>
#include <string_view>

#include "metrics/metrics.h"

namespace omnibus::test {

// The value of one series in Prometheus text (a /metrics body) by its exact rendered name and
// labels, e.g. omnibus_edge_requests_total{channel="wa",code="200"}; -1 when absent.
inline double metric_value(std::string_view text, std::string_view series) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        const std::string_view line(text.data() + pos, eol - pos);
        if (line.size() > series.size() && line.substr(0, series.size()) == series && line[series.size()] == ' ')
            return std::stod(std::string(line.substr(series.size() + 1)));
        pos = eol + 1;
    }
    return -1;
}

inline double metric_value(const metrics::Registry& registry, std::string_view series) {
    return metric_value(registry.render(), series);
}

}  // namespace omnibus::test
