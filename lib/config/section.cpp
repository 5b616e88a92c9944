// Resolved sections: typed getters, the builder the loader fills, and diff().
#include "config/section.h"

#include <stdexcept>

#include "config/section_builder.h"

namespace omnibus::config {

struct Section::Entry {
    std::string name;
    OptionType type = OptionType::string;
    Value value;                  // scalar, list and map options
    Section section;              // OptionType::section
    std::vector<Section> blocks;  // OptionType::blocks
    bool written = false;
    Position position;
};

struct Section::Data {
    std::string path;
    std::string name;
    std::string type;
    Position position;
    std::vector<Entry> entries;  // declaration order
};

namespace {

std::string join(const std::string& path, std::string_view name) {
    return path.empty() ? std::string(name) : path + "." + std::string(name);
}

}  // namespace

Section::Section() {
    // Every non-section entry holds an empty Section: share one instead of allocating each.
    static const std::shared_ptr<const Data> empty = std::make_shared<const Data>();
    data_ = empty;
}

const std::string& Section::path() const { return data_->path; }
const std::string& Section::name() const { return data_->name; }
const std::string& Section::type() const { return data_->type; }
Position Section::position() const { return data_->position; }

const Section::Entry& Section::entry(std::string_view option) const {
    for (const Entry& e : data_->entries) {
        if (e.name == option) return e;
    }
    throw std::logic_error("config: '" + (data_->path.empty() ? std::string("(top level)") : data_->path) +
                           "' has no option '" + std::string(option) + "'");
}

const Section::Entry& Section::entry(std::string_view option, OptionType t1, OptionType t2) const {
    const Entry& e = entry(option);
    if (e.type != t1 && e.type != t2) {
        throw std::logic_error("config option '" + join(data_->path, option) + "' is of type " +
                               std::string(type_name(e.type)) + ", not " + std::string(type_name(t1)));
    }
    return e;
}

const Value& Section::value(std::string_view option, OptionType type) const {
    const Entry& e = entry(option, type, type);
    if (std::holds_alternative<std::monostate>(e.value)) {
        throw std::logic_error("config option '" + join(data_->path, option) +
                               "' was not set and has no default; check has() first");
    }
    return e.value;
}

Position Section::position(std::string_view option) const {
    const Entry& e = entry(option);
    return e.written ? e.position : data_->position;
}

bool Section::has(std::string_view option) const { return entry(option).written; }

const std::string& Section::string(std::string_view option) const {
    const Entry& e = entry(option, OptionType::string, OptionType::enumeration);
    return std::get<std::string>(value(option, e.type));
}

const Secret& Section::secret(std::string_view option) const {
    return std::get<Secret>(value(option, OptionType::secret));
}

bool Section::boolean(std::string_view option) const { return std::get<bool>(value(option, OptionType::boolean)); }

std::int64_t Section::integer(std::string_view option) const {
    return std::get<std::int64_t>(value(option, OptionType::integer));
}

double Section::real(std::string_view option) const { return std::get<double>(value(option, OptionType::real)); }

std::chrono::milliseconds Section::duration(std::string_view option) const {
    return std::get<std::chrono::milliseconds>(value(option, OptionType::duration));
}

std::uint64_t Section::size(std::string_view option) const {
    return std::get<std::uint64_t>(value(option, OptionType::size));
}

const std::vector<std::string>& Section::strings(std::string_view option) const {
    return std::get<std::vector<std::string>>(value(option, OptionType::strings));
}

const Address& Section::address(std::string_view option) const {
    return std::get<Address>(value(option, OptionType::address));
}

const SecretMap& Section::secret_map(std::string_view option) const {
    return std::get<SecretMap>(value(option, OptionType::secret_map));
}

const Section& Section::section(std::string_view option) const {
    return entry(option, OptionType::section, OptionType::section).section;
}

const std::vector<Section>& Section::blocks(std::string_view option) const {
    return entry(option, OptionType::blocks, OptionType::blocks).blocks;
}

SectionBuilder::SectionBuilder(std::string path, std::string name, std::string type, Position position)
    : data_(std::make_shared<Section::Data>()) {
    data_->path = std::move(path);
    data_->name = std::move(name);
    data_->type = std::move(type);
    data_->position = position;
}

SectionBuilder::~SectionBuilder() = default;

void SectionBuilder::add(const std::string& name, OptionType type, Value value, bool written, Position position) {
    Section::Entry e;
    e.name = name;
    e.type = type;
    e.value = std::move(value);
    e.written = written;
    e.position = position;
    data_->entries.push_back(std::move(e));
}

void SectionBuilder::add_section(const std::string& name, Section section, bool written, Position position) {
    Section::Entry e;
    e.name = name;
    e.type = OptionType::section;
    e.section = std::move(section);
    e.written = written;
    e.position = position;
    data_->entries.push_back(std::move(e));
}

void SectionBuilder::add_blocks(const std::string& name, std::vector<Section> blocks, bool written,
                                Position position) {
    Section::Entry e;
    e.name = name;
    e.type = OptionType::blocks;
    e.blocks = std::move(blocks);
    e.written = written;
    e.position = position;
    data_->entries.push_back(std::move(e));
}

Section SectionBuilder::build() {
    Section s;
    s.data_ = std::move(data_);
    data_ = std::make_shared<Section::Data>();
    return s;
}

namespace {

const Section* find_block(const std::vector<Section>& blocks, const std::string& name) {
    for (const Section& b : blocks) {
        if (b.name() == name) return &b;
    }
    return nullptr;
}

}  // namespace

std::vector<std::string> diff(const Section& before, const Section& after) {
    std::vector<std::string> changed;
    const auto& a = before.data_->entries;
    const auto& b = after.data_->entries;
    auto find = [](const std::vector<Section::Entry>& entries, const std::string& name) -> const Section::Entry* {
        for (const auto& e : entries) {
            if (e.name == name) return &e;
        }
        return nullptr;
    };
    for (const Section::Entry& ea : a) {
        const std::string path = join(before.path(), ea.name);
        const Section::Entry* eb = find(b, ea.name);
        if (eb == nullptr || eb->type != ea.type) {
            changed.push_back(path);
        } else if (ea.type == OptionType::section) {
            auto inner = diff(ea.section, eb->section);
            changed.insert(changed.end(), inner.begin(), inner.end());
        } else if (ea.type == OptionType::blocks) {
            for (const Section& block : ea.blocks) {
                const Section* other = find_block(eb->blocks, block.name());
                if (other == nullptr || other->type() != block.type()) {
                    changed.push_back(block.path());
                } else {
                    auto inner = diff(block, *other);
                    changed.insert(changed.end(), inner.begin(), inner.end());
                }
            }
            for (const Section& block : eb->blocks) {
                if (find_block(ea.blocks, block.name()) == nullptr) changed.push_back(block.path());
            }
        } else if (ea.value != eb->value) {
            changed.push_back(path);
        }
    }
    for (const Section::Entry& eb : b) {
        if (find(a, eb.name) == nullptr) changed.push_back(join(after.path(), eb.name));
    }
    return changed;
}

}  // namespace omnibus::config
