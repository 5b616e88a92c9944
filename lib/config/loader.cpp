// Validation of a YAML document against a Spec: collects every diagnostic, or
// builds the resolved Section with defaults filled and runs the cross-field checks.
#include "config/loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>

#include "config/did_you_mean.h"
#include "config/section_builder.h"

namespace omnibus::config {

namespace {

constexpr std::size_t kMaxConfigFile = 16 << 20;
// Guards against YAML aliases that loop back into a mapping (yaml-cpp builds
// `&a {x: *a}` as a cycle) combined with a recursive block schema, and against
// alias fan-out ("billion laughs"): both would otherwise walk without end.
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxEntries = 1'000'000;

Position position_of(const YAML::Mark& m) {
    if (m.is_null() || m.line < 0 || m.column < 0) return {};
    return {m.line + 1, m.column + 1};
}

std::string join(const std::string& path, std::string_view name) {
    return path.empty() ? std::string(name) : path + "." + std::string(name);
}

// Text from the file for a message: quoted, and cut (on a UTF-8 boundary) when long.
std::string quote(std::string_view text) {
    constexpr std::size_t kMax = 60;
    if (text.size() <= kMax) return "'" + std::string(text) + "'";
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return "'" + std::string(text.substr(0, cut)) + "...'";
}

std::string quote_all(const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i > 0) out += ", ";
        out += quote(names[i]);
    }
    return out;
}

std::string at(Position p) { return std::to_string(p.line) + ":" + std::to_string(p.column); }

// What a message says was found instead of what was expected. A scalar is
// shown as written in the file, before substitution, so no secret is echoed.
std::string describe(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map: return "a mapping";
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Scalar: return quote(n.Scalar());
        default: return "nothing";
    }
}

// How a message refers to a scalar: its text, or where it came from when a
// substitution produced it (the text may be a secret).
std::string shown(const std::string& raw, const std::string& text, bool substituted) {
    if (!substituted) return quote(text);
    if (raw.starts_with("${") && raw.find('}') == raw.size() - 1) return "value from " + raw;
    return "value from " + quote(raw);
}

bool valid_block_name(std::string_view name) {
    if (name.empty() || name.size() > 63) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(i > 0 && (c == '_' || c == '-'))) return false;
    }
    return true;
}

std::string expected_text(const Option& o) {
    switch (o.type()) {
        case OptionType::string:
        case OptionType::secret: return "a string";
        case OptionType::boolean: return "true or false";
        case OptionType::integer: return "an integer";
        case OptionType::real: return "a number";
        case OptionType::duration: return "a duration such as '30s'";
        case OptionType::size: return "a size such as '64KiB'";
        case OptionType::address: return "an address such as '127.0.0.1:9090'";
        case OptionType::enumeration: return "one of " + quote_all(o.allowed());
        case OptionType::strings: return "a list of strings";
        case OptionType::secret_map: return "a mapping of names to values";
        case OptionType::section: return "a mapping";
        case OptionType::blocks: return "a list of blocks";
    }
    return "a value";
}

// The value of an option that was not written: its default, or for a list or
// map without one, empty (so components iterate without checking has()).
Value fallback(const Option& o) {
    if (o.has_default()) return o.default_value();
    if (o.type() == OptionType::strings) return std::vector<std::string>{};
    if (o.type() == OptionType::secret_map) return SecretMap{};
    return {};
}

// One key: value pair of a mapping, as found in the file.
struct Item {
    std::string key;
    YAML::Node value;
    Position key_position;
    Position value_position;  // the key's when the value is empty: yaml-cpp marks it on the next line
};

const Item* find_item(const std::vector<Item>& items, std::string_view key) {
    for (const Item& i : items) {
        if (i.key == key) return &i;
    }
    return nullptr;
}

// A scalar after substitution, and how messages may refer to it.
struct Scalar {
    std::string text;
    std::string shown;
    bool substituted = false;
};

class Walker {
public:
    Walker(Reporter& reporter, const LoadOptions& options) : reporter_(reporter), options_(options) {}

    Section top_level(const YAML::Node& doc, const Spec& spec) {
        std::vector<Item> items;
        Position where{1, 1};
        if (doc.IsMap()) {
            if (const Position p = position_of(doc.Mark()); p.known()) where = p;
            items = items_of(doc, "");
        } else if (!doc.IsNull()) {
            Position p = position_of(doc.Mark());
            reporter_.error(p.known() ? p : where,
                            "expected a mapping of options at the top level, got " + describe(doc));
            return Section();
        }
        return resolve(items, spec, Context{"", "", "", where}, 0);
    }

private:
    struct Context {
        std::string path;
        std::string name;
        std::string type;
        Position position;
    };

    void error(Position p, std::string message) { reporter_.error(p, std::move(message)); }

    // The pairs of a mapping, reporting keys that are not plain strings and
    // keys given twice (yaml-cpp keeps both silently; the second would win or
    // lose depending on the reader).
    std::vector<Item> items_of(const YAML::Node& mapping, const std::string& path) {
        std::vector<Item> items;
        std::map<std::string, Position, std::less<>> seen;
        for (const auto& pair : mapping) {
            if (++entries_ > kMaxEntries) {
                if (entries_ == kMaxEntries + 1) error({}, "the document is too large (over a million entries)");
                return items;
            }
            const YAML::Node& key = pair.first;
            const YAML::Node& value = pair.second;
            Position key_position = position_of(key.Mark());
            if (!key.IsScalar()) {
                error(key_position, (path.empty() ? std::string("a key") : path + ": a key") +
                                        " must be a plain name, got " + describe(key));
                continue;
            }
            Item item{key.Scalar(), value, key_position, key_position};
            if (!value.IsNull()) {
                if (const Position p = position_of(value.Mark()); p.known()) item.value_position = p;
            }
            if (auto [first, inserted] = seen.emplace(item.key, key_position); !inserted) {
                error(key_position, "duplicate key " + quote(join(path, item.key)) + "; first set at " +
                                        at(first->second));
                continue;
            }
            items.push_back(std::move(item));
        }
        return items;
    }

    Section resolve(const std::vector<Item>& items, const Spec& spec, const Context& ctx, int depth) {
        const std::size_t errors_before = reporter_.count();
        const bool is_block = !ctx.type.empty();
        if (depth > kMaxDepth) {
            error(ctx.position, ctx.path + ": nested too deeply");
            return Section();
        }

        std::vector<std::string> known;
        if (is_block) known = {"name", "type"};
        for (const Option& o : spec.options()) known.push_back(o.name());
        for (const Item& item : items) {
            if (is_block && (item.key == "name" || item.key == "type")) continue;
            if (spec.find(item.key) != nullptr) continue;
            std::string message = "unknown option " + quote(join(ctx.path, item.key));
            if (auto suggestion = did_you_mean(item.key, known)) message += "; did you mean " + quote(*suggestion) + "?";
            error(item.key_position, std::move(message));
        }

        SectionBuilder out(ctx.path, ctx.name, ctx.type, ctx.position);
        for (const Option& o : spec.options()) {
            const Item* item = find_item(items, o.name());
            const std::string path = join(ctx.path, o.name());
            const Position where = item ? item->value_position : ctx.position;
            switch (o.type()) {
                case OptionType::section: {
                    std::vector<Item> inner;
                    if (item && item->value.IsMap()) {
                        inner = items_of(item->value, path);
                    } else if (item && !item->value.IsNull()) {
                        error(item->value_position, path + ": expected a mapping, got " + describe(item->value));
                        out.add_section(o.name(), Section(), true, where);
                        break;
                    }
                    // An absent or empty section still gets its defaults and
                    // its required-option errors, at the key (or the parent).
                    const Position section_position = item ? item->key_position : ctx.position;
                    Section s = resolve(inner, *o.section_spec(), Context{path, o.name(), "", section_position},
                                        depth + 1);
                    out.add_section(o.name(), std::move(s), item != nullptr, section_position);
                    break;
                }
                case OptionType::blocks:
                    out.add_blocks(o.name(), blocks(o, item, path, depth), item != nullptr,
                                   item ? item->key_position : ctx.position);
                    break;
                default:
                    if (item) {
                        out.add(o.name(), o.type(), value(o, *item, path), true, where);
                    } else {
                        if (o.is_required()) error(ctx.position, "missing required option " + quote(path));
                        out.add(o.name(), o.type(), fallback(o), false, where);
                    }
            }
        }
        Section section = out.build();
        // Checks read values through the getters: only run them on a section
        // that resolved completely, or a getter would throw on a missing value.
        if (reporter_.count() == errors_before) {
            for (const Spec::Check& check : spec.checks()) check(section, reporter_);
        }
        return section;
    }

    std::optional<Scalar> scalar(const YAML::Node& node, Position where, const std::string& path,
                                 std::string_view expected) {
        if (!node.IsScalar()) {
            error(where, path + ": expected " + std::string(expected) + ", got " + describe(node));
            return std::nullopt;
        }
        const std::string& raw = node.Scalar();
        Expansion e = expand(raw, options_.getenv, options_.read_file);
        if (!e.ok()) {
            error(where, path + ": " + e.error);
            return std::nullopt;
        }
        Scalar s;
        s.shown = shown(raw, e.text, e.substituted);
        s.text = std::move(e.text);
        s.substituted = e.substituted;
        return s;
    }

    // A scalar taken as written: block names and types become paths, URLs and
    // log fields, so a substitution there could publish a secret.
    std::optional<Scalar> literal(const YAML::Node& node, Position where, const std::string& path,
                                  std::string_view why) {
        if (!node.IsScalar()) {
            error(where, path + ": expected a string, got " + describe(node));
            return std::nullopt;
        }
        if (node.Scalar().find("${") != std::string::npos) {
            error(where, path + ": write it literally; " + std::string(why) + "substitutions are not allowed here");
            return std::nullopt;
        }
        return Scalar{node.Scalar(), quote(node.Scalar()), false};
    }

    // Parses a scalar with `parse` and checks the option's range; monostate on error.
    template <class Parse>
    Value parsed(const Option& o, const Item& item, const std::string& path, Parse parse) {
        auto s = scalar(item.value, item.value_position, path, expected_text(o));
        if (!s) return {};
        auto result = parse(s->text);
        if (!result.value) {
            error(item.value_position, path + ": " + result.error + ", got " + s->shown);
            return {};
        }
        Value v = *std::move(result.value);
        if (const auto& b = o.bounds(); b && (less_than(v, b->min) || less_than(b->max, v))) {
            error(item.value_position, path + ": expected " + format_value(b->min) + " to " + format_value(b->max) +
                                           ", got " + s->shown);
            return {};
        }
        return v;
    }

    Value value(const Option& o, const Item& item, const std::string& path) {
        switch (o.type()) {
            case OptionType::string: {
                auto s = scalar(item.value, item.value_position, path, expected_text(o));
                return s ? Value(std::move(s->text)) : Value();
            }
            case OptionType::secret: {
                auto s = scalar(item.value, item.value_position, path, expected_text(o));
                return s ? Value(Secret(std::move(s->text))) : Value();
            }
            case OptionType::boolean: return parsed(o, item, path, parse_boolean);
            case OptionType::integer: return parsed(o, item, path, parse_integer);
            case OptionType::real: return parsed(o, item, path, parse_real);
            case OptionType::duration: return parsed(o, item, path, parse_duration);
            case OptionType::size: return parsed(o, item, path, parse_size);
            case OptionType::address: return parsed(o, item, path, parse_address);
            case OptionType::enumeration: {
                auto s = scalar(item.value, item.value_position, path, expected_text(o));
                if (!s) return {};
                for (const std::string& allowed : o.allowed()) {
                    if (allowed == s->text) return s->text;
                }
                std::string message = path + ": expected " + expected_text(o) + ", got " + s->shown;
                // A suggestion would hint at a substituted value: only for text from the file.
                if (!s->substituted) {
                    if (auto suggestion = did_you_mean(s->text, o.allowed())) {
                        message += "; did you mean " + quote(*suggestion) + "?";
                    }
                }
                error(item.value_position, std::move(message));
                return {};
            }
            case OptionType::strings: return strings(o, item, path);
            case OptionType::secret_map: return secret_map(o, item, path);
            case OptionType::section:
            case OptionType::blocks: break;
        }
        throw std::logic_error("config: no scalar resolution for " + path);
    }

    Value strings(const Option& o, const Item& item, const std::string& path) {
        if (item.value.IsNull()) return std::vector<std::string>{};
        if (!item.value.IsSequence()) {
            error(item.value_position, path + ": expected " + expected_text(o) + ", got " + describe(item.value));
            return {};
        }
        std::vector<std::string> list;
        bool failed = false;
        std::size_t index = 0;
        for (const YAML::Node& element : item.value) {
            Position where = position_of(element.Mark());
            if (!where.known() || element.IsNull()) where = item.value_position;
            auto s = scalar(element, where, path + "[" + std::to_string(index++) + "]", "a string");
            if (s) {
                list.push_back(std::move(s->text));
            } else {
                failed = true;
            }
        }
        return failed ? Value() : Value(std::move(list));
    }

    // Values of a secret map are never shown, whether substituted or not.
    Value secret_map(const Option& o, const Item& item, const std::string& path) {
        if (item.value.IsNull()) return SecretMap{};
        if (!item.value.IsMap()) {
            error(item.value_position, path + ": expected " + expected_text(o) + ", got " +
                                           (item.value.IsScalar() ? std::string("a scalar") : describe(item.value)));
            return {};
        }
        SecretMap map;
        bool failed = false;
        for (const Item& entry : items_of(item.value, path)) {
            const std::string entry_path = join(path, entry.key);
            if (!entry.value.IsScalar()) {
                error(entry.value_position, entry_path + ": expected a value, got " + describe(entry.value));
                failed = true;
                continue;
            }
            Expansion e = expand(entry.value.Scalar(), options_.getenv, options_.read_file);
            if (!e.ok()) {
                error(entry.value_position, entry_path + ": " + e.error);
                failed = true;
                continue;
            }
            map.emplace(entry.key, Secret(std::move(e.text)));
        }
        return failed ? Value() : Value(std::move(map));
    }

    std::vector<Section> blocks(const Option& o, const Item* item, const std::string& path, int depth) {
        if (item == nullptr || item->value.IsNull()) return {};
        if (!item->value.IsSequence()) {
            error(item->value_position,
                  path + ": expected a list of blocks, each a mapping with 'name' and 'type', got " +
                      describe(item->value));
            return {};
        }
        const BlockTypes& types = *o.block_types();
        std::map<std::string, Position, std::less<>> names;
        std::vector<Section> out;
        std::size_t index = 0;
        for (const YAML::Node& element : item->value) {
            const std::string indexed = path + "[" + std::to_string(index++) + "]";
            Position where = position_of(element.Mark());
            if (!where.known() || element.IsNull()) where = item->value_position;
            if (!element.IsMap()) {
                error(where, indexed + ": expected a mapping with 'name' and 'type', got " + describe(element));
                continue;
            }
            const std::vector<Item> items = items_of(element, indexed);

            std::string name;
            std::string block_path = indexed;
            if (const Item* name_item = find_item(items, "name"); name_item == nullptr) {
                error(where, "missing required option " + quote(indexed + ".name"));
            } else if (auto s = literal(name_item->value, name_item->value_position, indexed + ".name",
                                       "names appear in URLs and logs, so ")) {
                if (!valid_block_name(s->text)) {
                    error(name_item->value_position,
                          indexed + ".name: expected 1 to 63 characters of a-z, 0-9, '_' and '-', starting with a "
                                    "letter or digit (names appear in URLs), got " + s->shown);
                } else if (auto [first, inserted] = names.emplace(s->text, name_item->value_position); !inserted) {
                    error(name_item->value_position,
                          indexed + ".name: " + s->shown + " is already the name of the block at " + at(first->second));
                } else {
                    name = s->text;
                    block_path = join(path, name);
                }
            }

            const Spec* spec = nullptr;
            std::string type;
            if (const Item* type_item = find_item(items, "type"); type_item == nullptr) {
                error(where, "missing required option " + quote(block_path + ".type"));
            } else if (auto s = literal(type_item->value, type_item->value_position, block_path + ".type", "")) {
                spec = types.resolve(s->text);
                if (spec == nullptr) {
                    std::string message = block_path + ".type: unknown type " + s->shown;
                    if (auto suggestion = did_you_mean(s->text, types.names)) {
                        message += "; did you mean " + quote(*suggestion) + "?";
                    }
                    message += " (known types: " + quote_all(types.names) + ")";
                    error(type_item->value_position, std::move(message));
                } else {
                    type = s->text;
                }
            }
            // Without a known type there is no spec to check the other keys against.
            if (spec == nullptr) continue;
            if (spec->find("name") != nullptr || spec->find("type") != nullptr) {
                throw std::logic_error("config: block type '" + type + "' declares 'name' or 'type' itself");
            }
            out.push_back(resolve(items, *spec, Context{block_path, name, type, where}, depth + 1));
        }
        return out;
    }

    Reporter& reporter_;
    const LoadOptions& options_;
    std::size_t entries_ = 0;
};

}  // namespace

std::string LoadResult::report() const {
    std::string out;
    for (const Diagnostic& d : diagnostics) {
        out += d.to_string();
        out += '\n';
    }
    return out;
}

namespace {

// Where each YAML document starts; nothing else.
class DocumentStarts : public YAML::EventHandler {
public:
    std::vector<YAML::Mark> starts;

    void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
};

// Checks that `text` is exactly one YAML document, reporting otherwise.
// yaml-cpp 0.7 has a trap here: on a stray flow indicator where a document
// should start (",", or "- a\n,") it reports an empty document without
// consuming anything, forever, so YAML::LoadAll never returns and YAML::Load
// silently returns null. A document that starts where the previous one did
// is that case: report the character as a syntax error instead.
bool single_document(const std::string& text, Reporter& reporter) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts events;
    while (events.starts.size() < 3 && parser.HandleNextDocument(events)) {
        const std::size_t n = events.starts.size();
        if (n >= 2 && events.starts[n - 1].pos == events.starts[n - 2].pos) {
            const YAML::Mark& stuck = events.starts[n - 1];
            const auto pos = static_cast<std::size_t>(stuck.pos);
            reporter.error(position_of(stuck), pos < text.size() ? "invalid YAML: unexpected " + quote(text.substr(pos, 1))
                                                                 : std::string("invalid YAML: unexpected end"));
            return false;
        }
    }
    if (events.starts.size() > 1) {
        Position second = position_of(events.starts[1]);
        reporter.error(second, "only one YAML document is allowed; remove the second '---' and what follows");
        return false;
    }
    return true;
}

}  // namespace

LoadResult load_string(std::string_view text, const std::string& display_name, const Spec& schema,
                       const LoadOptions& options) {
    Reporter reporter(display_name);
    Section config;
    try {
        const std::string yaml(text);
        if (single_document(yaml, reporter)) {
            config = Walker(reporter, options).top_level(YAML::Load(yaml), schema);
        }
    } catch (const YAML::Exception& e) {
        reporter.error(position_of(e.mark), "invalid YAML: " + e.msg);
    }
    LoadResult result;
    if (reporter.count() == 0) result.config = std::move(config);
    result.diagnostics = std::move(reporter).take_sorted();
    return result;
}

LoadResult load_file(const std::string& path, const Spec& schema, const LoadOptions& options) {
    FileContent content = read_text_file(path, kMaxConfigFile);
    if (!content.text) {
        LoadResult result;
        result.diagnostics.push_back(Diagnostic{path, {}, std::string("cannot read: ") + std::strerror(content.error)});
        return result;
    }
    return load_string(*content.text, path, schema, options);
}

}  // namespace omnibus::config
