// Assembles a Section while loading (used by the loader, not by components).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/section.h"

namespace omnibus::config {

class SectionBuilder {
public:
    SectionBuilder(std::string path, std::string name, std::string type, Position position);
    ~SectionBuilder();
    SectionBuilder(const SectionBuilder&) = delete;
    SectionBuilder& operator=(const SectionBuilder&) = delete;

    // `value` is std::monostate when the option was neither written nor has a default.
    void add(const std::string& name, OptionType type, Value value, bool written, Position position);
    void add_section(const std::string& name, Section section, bool written, Position position);
    void add_blocks(const std::string& name, std::vector<Section> blocks, bool written, Position position);

    Section build();

private:
    std::shared_ptr<Section::Data> data_;
};

}  // namespace omnibus::config
