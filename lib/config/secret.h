// A secret value (token, password, app secret). It prints as "***" wherever it
// is streamed or logged; the real value is only reachable through reveal().
#pragma once

#include <ostream>
#include <string>
#include <utility>

namespace omnibus {

class Secret {
public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}

    // The one way to read the value: grep for reveal() to audit every use.
    const std::string& reveal() const { return value_; }
    bool empty() const { return value_.empty(); }

    friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }
    friend std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

private:
    std::string value_;
};

}  // namespace omnibus
