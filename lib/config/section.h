// A resolved configuration section: every declared option with its value
// (from the file or the default), where it was set, and typed getters.
//
// Sections are immutable and share their data, so copies are cheap; they are
// read at start-up and on SIGHUP reload, and may be read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "config/spec.h"
#include "config/value.h"

namespace omnibus::config {

class SectionBuilder;

class Section {
public:
    Section();  // empty: no options declared

    // Dotted path from the top: "" for the top level, "kafka", "channels.web".
    const std::string& path() const;
    // The block's `name` and `type` for an element of a block list; for a
    // section, its key and "".
    const std::string& name() const;
    const std::string& type() const;

    // Where the section's mapping is (for an absent section: where its parent is).
    Position position() const;
    // Where an option's value was written; the section's position when it was
    // not written (so a check can say "required here").
    Position position(std::string_view option) const;
    // Whether the option was written in the file (as opposed to defaulted).
    bool has(std::string_view option) const;

    // Typed getters. Asking for an undeclared option, the wrong type, or an
    // option that was neither written nor has a default (check has() first) is
    // a programming error: std::logic_error. Lists, maps and sections that were
    // not written are empty instead.
    const std::string& string(std::string_view option) const;  // string and enumeration
    const Secret& secret(std::string_view option) const;
    bool boolean(std::string_view option) const;
    std::int64_t integer(std::string_view option) const;
    double real(std::string_view option) const;
    std::chrono::milliseconds duration(std::string_view option) const;
    std::uint64_t size(std::string_view option) const;
    const std::vector<std::string>& strings(std::string_view option) const;
    const Address& address(std::string_view option) const;
    const SecretMap& secret_map(std::string_view option) const;
    const Section& section(std::string_view option) const;
    const std::vector<Section>& blocks(std::string_view option) const;

private:
    friend class SectionBuilder;
    friend std::vector<std::string> diff(const Section& before, const Section& after);
    struct Entry;
    struct Data;

    const Entry& entry(std::string_view option) const;
    const Entry& entry(std::string_view option, OptionType t1, OptionType t2) const;
    const Value& value(std::string_view option, OptionType type) const;

    std::shared_ptr<const Data> data_;
};

// The dotted paths of options whose effective value differs between two loads
// of the same schema, in declaration order, so a reload can say "kafka.brokers
// changed; restart required". A block added, removed or given another type
// appears as "channels.<name>". Secrets are compared, never printed.
std::vector<std::string> diff(const Section& before, const Section& after);

}  // namespace omnibus::config
