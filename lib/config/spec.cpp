// Option and Spec declarations, and the consistency checks on them.
#include "config/spec.h"

#include <limits>
#include <stdexcept>

namespace omnibus::config {

namespace {

// Option names appear in YAML keys, dotted paths and the reference: keep them plain.
bool valid_option_name(std::string_view name) {
    if (name.empty() || !(name[0] >= 'a' && name[0] <= 'z')) return false;
    for (char c : name) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

}  // namespace

std::string_view type_name(OptionType type) {
    switch (type) {
        case OptionType::string: return "string";
        case OptionType::secret: return "secret";
        case OptionType::boolean: return "boolean";
        case OptionType::integer: return "integer";
        case OptionType::real: return "number";
        case OptionType::duration: return "duration";
        case OptionType::size: return "size";
        case OptionType::enumeration: return "enum";
        case OptionType::strings: return "list of strings";
        case OptionType::address: return "address";
        case OptionType::secret_map: return "map of secrets";
        case OptionType::section: return "section";
        case OptionType::blocks: return "list of blocks";
    }
    return "unknown";
}

void Option::misuse(std::string_view what) const {
    throw std::logic_error("config option '" + name_ + "' (" + std::string(type_name(type_)) + "): " +
                           std::string(what));
}

Option& Option::describe(std::string text) {
    description_ = std::move(text);
    return *this;
}

Option& Option::example(std::string text) {
    example_ = std::move(text);
    return *this;
}

Option& Option::required() {
    if (has_default()) misuse("required and a default contradict each other");
    if (type_ == OptionType::section || type_ == OptionType::blocks) {
        misuse("sections and block lists cannot be required; require their options instead");
    }
    required_ = true;
    return *this;
}

Option& Option::def(std::string_view text) { return set_default(from_text(text)); }

Value Option::from_boolean(bool v) const {
    if (type_ != OptionType::boolean) misuse("a boolean value");
    return v;
}

Option& Option::def(double v) { return set_default(from_real(v)); }

Option& Option::def(std::vector<std::string> list) {
    if (type_ != OptionType::strings) misuse("a list default");
    return set_default(std::move(list));
}

Option& Option::def(std::initializer_list<std::string_view> list) {
    return def(std::vector<std::string>(list.begin(), list.end()));
}

Option& Option::range(double min, double max) { return set_range(from_real(min), from_real(max)); }

Option& Option::range(std::string_view min, std::string_view max) {
    return set_range(from_text(min), from_text(max));
}

Value Option::from_signed(std::int64_t v) const {
    switch (type_) {
        case OptionType::integer: return v;
        case OptionType::real: return static_cast<double>(v);
        case OptionType::size:
            if (v < 0) misuse("a negative size");
            return static_cast<std::uint64_t>(v);
        default: misuse("an integer value; durations take a unit, e.g. 5s or def(\"5s\")");
    }
}

Value Option::from_unsigned(std::uint64_t v) const {
    switch (type_) {
        case OptionType::integer:
            if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) misuse("beyond int64");
            return static_cast<std::int64_t>(v);
        case OptionType::real: return static_cast<double>(v);
        case OptionType::size: return v;
        default: misuse("an integer value; durations take a unit, e.g. 5s or def(\"5s\")");
    }
}

Value Option::from_real(double v) const {
    if (type_ != OptionType::real) misuse("a floating-point value");
    return v;
}

Value Option::from_duration(std::chrono::milliseconds v) const {
    if (type_ != OptionType::duration) misuse("a duration value");
    if (v.count() < 0) misuse("a negative duration");
    return v;
}

Value Option::from_text(std::string_view text) const {
    auto take = [&](auto parsed) -> Value {
        if (!parsed.value) misuse("'" + std::string(text) + "': " + parsed.error);
        return *std::move(parsed.value);
    };
    switch (type_) {
        case OptionType::string: return std::string(text);
        case OptionType::secret: return Secret(std::string(text));
        case OptionType::boolean: return take(parse_boolean(text));
        case OptionType::integer: return take(parse_integer(text));
        case OptionType::real: return take(parse_real(text));
        case OptionType::duration: return take(parse_duration(text));
        case OptionType::size: return take(parse_size(text));
        case OptionType::address: return take(parse_address(text));
        case OptionType::enumeration:
            for (const auto& a : allowed_) {
                if (a == text) return std::string(text);
            }
            misuse("'" + std::string(text) + "' is not one of the allowed values");
        default: misuse("a text value");
    }
}

Option& Option::set_default(Value v) {
    if (required_) misuse("required and a default contradict each other");
    default_ = std::move(v);
    check_default_in_range();
    return *this;
}

Option& Option::set_range(Value min, Value max) {
    if (type_ != OptionType::integer && type_ != OptionType::real && type_ != OptionType::duration &&
        type_ != OptionType::size) {
        misuse("a range");
    }
    if (less_than(max, min)) misuse("a range whose minimum is above its maximum");
    bounds_ = Bounds{std::move(min), std::move(max)};
    check_default_in_range();
    return *this;
}

void Option::check_default_in_range() const {
    if (bounds_ && has_default() && (less_than(default_, bounds_->min) || less_than(bounds_->max, default_))) {
        misuse("the default is outside the range");
    }
}

Spec::Spec(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)) {}

Option& Spec::add(std::string name, OptionType type) {
    if (!valid_option_name(name)) {
        throw std::logic_error("config spec '" + name_ + "': option name '" + name +
                               "' must match [a-z][a-z0-9_]*");
    }
    if (find(name)) throw std::logic_error("config spec '" + name_ + "': option '" + name + "' declared twice");
    options_.push_back(Option(std::move(name), type));
    return options_.back();
}

Option& Spec::string(std::string name) { return add(std::move(name), OptionType::string); }
Option& Spec::secret(std::string name) { return add(std::move(name), OptionType::secret); }
Option& Spec::boolean(std::string name) { return add(std::move(name), OptionType::boolean); }
Option& Spec::integer(std::string name) { return add(std::move(name), OptionType::integer); }
Option& Spec::real(std::string name) { return add(std::move(name), OptionType::real); }
Option& Spec::duration(std::string name) { return add(std::move(name), OptionType::duration); }
Option& Spec::size(std::string name) { return add(std::move(name), OptionType::size); }
Option& Spec::strings(std::string name) { return add(std::move(name), OptionType::strings); }
Option& Spec::address(std::string name) { return add(std::move(name), OptionType::address); }
Option& Spec::secret_map(std::string name) { return add(std::move(name), OptionType::secret_map); }

Option& Spec::enumeration(std::string name, std::vector<std::string> allowed) {
    if (allowed.empty()) throw std::logic_error("config option '" + name + "': an enumeration needs allowed values");
    Option& o = add(std::move(name), OptionType::enumeration);
    o.allowed_ = std::move(allowed);
    return o;
}

Option& Spec::section(Spec spec) {
    Option& o = add(spec.name(), OptionType::section);
    o.description_ = spec.description();
    o.section_ = std::make_shared<const Spec>(std::move(spec));
    return o;
}

Option& Spec::blocks(std::string name, BlockTypes types) {
    if (!types.resolve) throw std::logic_error("config option '" + name + "': block list without a resolver");
    Option& o = add(std::move(name), OptionType::blocks);
    o.blocks_ = std::move(types);
    return o;
}

Spec& Spec::check(Check rule) {
    checks_.push_back(std::move(rule));
    return *this;
}

const Option* Spec::find(std::string_view name) const {
    for (const Option& o : options_) {
        if (o.name() == name) return &o;
    }
    return nullptr;
}

}  // namespace omnibus::config
