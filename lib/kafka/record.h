// A Kafka record as omnibus produces and consumes it: key, value and headers.
// Shared by the Kafka layer and the envelope codec so neither depends on the other.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace omnibus::kafka {

struct Header {
    std::string name;
    std::string value;
    friend bool operator==(const Header&, const Header&) = default;
};

struct Record {
    std::string topic;
    std::string key;
    std::string value;
    std::vector<Header> headers;
    // Produce a null value: a tombstone, which makes a compacted topic forget the key.
    // `value` is ignored then. An empty `value` without this flag is an empty value, not null.
    bool tombstone = false;
    // Produce to this partition instead of the one the key hashes to (-1). A state store's
    // changelog is co-partitioned with the store's input: its records go to the input's
    // partition number, whatever their own keys hash to.
    int partition = -1;

    // First header with this name, or nullptr.
    const Header* header(std::string_view name) const {
        for (const auto& h : headers)
            if (h.name == name) return &h;
        return nullptr;
    }
};

}  // namespace omnibus::kafka
