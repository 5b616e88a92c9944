// Option specs: a component declares each option once (type, default, range,
// description, example) and validation, defaults and the reference all follow.
//
//   Spec kafka("kafka", "Kafka connection");
//   kafka.boolean("embedded").def(false).describe("start librdkafka's mock cluster in-process (dev only)");
//   kafka.string("brokers").describe("comma-separated bootstrap list").example("k1:9092,k2:9092");
//   kafka.integer("partitions").def(6).range(1, 10000);
//   kafka.duration("timeout").def("5s").range(100ms, 1min);
//   kafka.secret_map("client").describe("librdkafka properties passed through");
//   kafka.check([](const Section& s, Reporter& r) {
//       if (!s.boolean("embedded") && !s.has("brokers"))
//           r.error(s.position("brokers"), "kafka.brokers is required unless kafka.embedded is true");
//   });
//   root.section(kafka);
//
// Declaration mistakes (a default of the wrong type, a default outside the
// range, a name declared twice) throw std::logic_error at once: they are bugs
// in the program, not in the user's file.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "config/value.h"

namespace omnibus::config {

class Reporter;
class Section;
class Spec;

enum class OptionType {
    string,
    secret,       // → omnibus::Secret; never echoed in diagnostics
    boolean,
    integer,      // int64
    real,         // double
    duration,     // → std::chrono::milliseconds
    size,         // → uint64 bytes
    enumeration,  // one of the allowed strings
    strings,      // list of strings
    address,      // host:port
    secret_map,   // free-form keys → Secret
    section,      // a nested Spec
    blocks,       // a list of blocks, each with `name` and a `type` that selects its Spec
};

// How the type is named in diagnostics and in the reference: "integer", "list of strings", ...
std::string_view type_name(OptionType type);

// How a list of blocks finds the spec of each block, by the block's `type`.
// The resolver is called while loading and rendering; the specs it returns
// must outlive those calls (a registry that lives for the program does).
struct BlockTypes {
    std::function<const Spec*(std::string_view type)> resolve;  // nullptr for an unknown type
    std::vector<std::string> names;  // every known type: for did-you-mean, and the reference's order
};

class Option {
public:
    struct Bounds {
        Value min;
        Value max;
    };

    Option& describe(std::string text);
    Option& example(std::string text);
    Option& required();

    // The value used when the option is absent from the file. def(text) reads
    // the text as if it were written in the YAML: def("250ms"), def("64KiB"),
    // def(":8080"); the typed forms take the value itself.
    //
    // (bool is a template so that def("text") cannot decay to it, and there is
    // no const char* overload so that def({"INBOX"}) is a list on every compiler.)
    Option& def(std::string_view text);
    template <std::same_as<bool> B>
    Option& def(B v) {
        return set_default(from_boolean(v));
    }
    template <std::integral T>
        requires(!std::same_as<T, bool>)
    Option& def(T v) {
        return set_default(from_integral(v));
    }
    Option& def(double v);
    template <class Rep, class Period>
    Option& def(std::chrono::duration<Rep, Period> d) {
        return set_default(from_duration(std::chrono::duration_cast<std::chrono::milliseconds>(d)));
    }
    Option& def(std::vector<std::string> list);
    Option& def(std::initializer_list<std::string_view> list);

    // Inclusive bounds for integer, real, duration and size options.
    template <std::integral L, std::integral H>
        requires(!std::same_as<L, bool> && !std::same_as<H, bool>)
    Option& range(L min, H max) {
        return set_range(from_integral(min), from_integral(max));
    }
    Option& range(double min, double max);
    template <class R1, class P1, class R2, class P2>
    Option& range(std::chrono::duration<R1, P1> min, std::chrono::duration<R2, P2> max) {
        return set_range(from_duration(std::chrono::duration_cast<std::chrono::milliseconds>(min)),
                         from_duration(std::chrono::duration_cast<std::chrono::milliseconds>(max)));
    }
    Option& range(std::string_view min, std::string_view max);

    const std::string& name() const { return name_; }
    OptionType type() const { return type_; }
    const std::string& description() const { return description_; }
    const std::string& example_text() const { return example_; }
    bool is_required() const { return required_; }
    bool has_default() const { return !std::holds_alternative<std::monostate>(default_); }
    const Value& default_value() const { return default_; }
    const std::optional<Bounds>& bounds() const { return bounds_; }
    const std::vector<std::string>& allowed() const { return allowed_; }  // enumeration
    const Spec* section_spec() const { return section_.get(); }           // section
    const BlockTypes* block_types() const { return blocks_ ? &*blocks_ : nullptr; }  // blocks

private:
    friend class Spec;
    Option(std::string name, OptionType type) : name_(std::move(name)), type_(type) {}

    template <std::integral T>
    Value from_integral(T v) const {
        if constexpr (std::is_signed_v<T>) {
            return from_signed(static_cast<std::int64_t>(v));
        } else {
            return from_unsigned(static_cast<std::uint64_t>(v));
        }
    }
    Value from_boolean(bool v) const;
    Value from_signed(std::int64_t v) const;
    Value from_unsigned(std::uint64_t v) const;
    Value from_real(double v) const;
    Value from_duration(std::chrono::milliseconds v) const;
    Value from_text(std::string_view text) const;
    Option& set_default(Value v);
    Option& set_range(Value min, Value max);
    void check_default_in_range() const;
    [[noreturn]] void misuse(std::string_view what) const;

    std::string name_;
    OptionType type_;
    std::string description_;
    std::string example_;
    bool required_ = false;
    Value default_;
    std::optional<Bounds> bounds_;
    std::vector<std::string> allowed_;
    std::shared_ptr<const Spec> section_;
    std::optional<BlockTypes> blocks_;
};

class Spec {
public:
    // A cross-field rule. It runs after this section (and everything in it)
    // loaded without errors, so every getter it calls has its value.
    using Check = std::function<void(const Section&, Reporter&)>;

    Spec(std::string name, std::string description);

    Option& string(std::string name);
    Option& secret(std::string name);
    Option& boolean(std::string name);
    Option& integer(std::string name);
    Option& real(std::string name);
    Option& duration(std::string name);
    Option& size(std::string name);
    Option& enumeration(std::string name, std::vector<std::string> allowed);
    Option& strings(std::string name);
    Option& address(std::string name);
    Option& secret_map(std::string name);
    // A nested section under the key spec.name(). The spec is copied: declare
    // it completely first (typically returned by the component's *_spec()).
    Option& section(Spec spec);
    // A list of blocks. Each block has `name` (unique in the list, matching
    // [a-z0-9][a-z0-9_-]{0,62} because it appears in URLs) and `type`, whose
    // spec declares the block's other options (it must not declare `name` or `type`).
    Option& blocks(std::string name, BlockTypes types);

    Spec& check(Check rule);

    const std::string& name() const { return name_; }
    const std::string& description() const { return description_; }
    const std::deque<Option>& options() const { return options_; }  // in declaration order
    const Option* find(std::string_view name) const;
    const std::vector<Check>& checks() const { return checks_; }

private:
    Option& add(std::string name, OptionType type);

    std::string name_;
    std::string description_;
    std::deque<Option> options_;  // a deque: references returned by add() stay valid
    std::vector<Check> checks_;
};

}  // namespace omnibus::config
