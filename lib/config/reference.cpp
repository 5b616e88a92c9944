// Markdown rendering of Specs.
#include "config/reference.h"

#include <stdexcept>

namespace omnibus::config {

namespace {

// A table cell stays on one line and a '|' in a description does not end it.
std::string cell(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == '|') {
            out += "\\|";
        } else if (c == '\n' || c == '\r') {
            out += ' ';
        } else {
            out += c;
        }
    }
    return out;
}

std::string code(std::string_view text) { return text.empty() ? "`\"\"`" : "`" + std::string(text) + "`"; }

// The anchor GitHub gives a heading, so sections can link to each other.
std::string anchor(std::string_view heading) {
    std::string out;
    for (char c : heading) {
        if (c >= 'A' && c <= 'Z') {
            out += static_cast<char>(c - 'A' + 'a');
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            out += c;
        } else if (c == ' ') {
            out += '-';
        }
    }
    return out;
}

std::string join(const std::string& path, std::string_view name) {
    return path.empty() ? std::string(name) : path + "." + std::string(name);
}

std::string section_heading(const std::string& path) { return "`" + path + "`"; }

std::string block_heading(const std::string& path, std::string_view type) {
    return "`" + path + "` of type `" + std::string(type) + "`";
}

std::string sentence(std::string text) {
    if (!text.empty() && text.back() != '.') text += '.';
    return text;
}

std::string description_cell(const Option& o, const std::string& path) {
    std::string out = sentence(o.description());
    auto add = [&out](const std::string& part) {
        if (!out.empty()) out += ' ';
        out += part;
    };
    if (o.type() == OptionType::enumeration) {
        std::string allowed;
        for (const std::string& a : o.allowed()) allowed += (allowed.empty() ? "" : ", ") + code(a);
        add("One of: " + allowed + ".");
    }
    if (const auto& b = o.bounds()) {
        add("Range: " + code(format_value(b->min)) + " to " + code(format_value(b->max)) + ".");
    }
    if (!o.example_text().empty()) add("Example: " + code(o.example_text()) + ".");
    if (o.type() == OptionType::section) {
        add("See [" + section_heading(path) + "](#" + anchor(section_heading(path)) + ").");
    }
    if (const BlockTypes* types = o.block_types()) {
        std::string list;
        for (const std::string& t : types->names) {
            const std::string heading = block_heading(path, t);
            list += (list.empty() ? "" : ", ") + std::string("[`") + t + "`](#" + anchor(heading) + ")";
        }
        add("Each block has a `name` and a `type`: " + (list.empty() ? std::string("none registered") : list) + ".");
    }
    return cell(out);
}

std::string default_cell(const Option& o) {
    if (!o.has_default()) return "";
    return cell(code(format_value(o.default_value())));
}

void render_table(const Spec& spec, const std::string& path, std::string& out) {
    if (spec.options().empty()) {
        out += "No options.\n\n";
        return;
    }
    out += "| Option | Type | Default | Required | Description |\n";
    out += "| --- | --- | --- | --- | --- |\n";
    for (const Option& o : spec.options()) {
        out += "| `" + o.name() + "` | " + std::string(type_name(o.type())) + " | " + default_cell(o) + " | " +
               (o.is_required() ? "yes" : "no") + " | " + description_cell(o, join(path, o.name())) + " |\n";
    }
    out += '\n';
}

void render_spec(const Spec& spec, const std::string& path, std::string& out);

void render_children(const Spec& spec, const std::string& path, std::string& out) {
    for (const Option& o : spec.options()) {
        const std::string child = join(path, o.name());
        if (o.type() == OptionType::section) {
            out += "## " + section_heading(child) + "\n\n";
            if (!o.section_spec()->description().empty()) out += sentence(o.section_spec()->description()) + "\n\n";
            render_spec(*o.section_spec(), child, out);
        } else if (const BlockTypes* types = o.block_types()) {
            for (const std::string& t : types->names) {
                const Spec* block = types->resolve(t);
                if (block == nullptr) throw std::logic_error("config: block type '" + t + "' is listed but unresolved");
                out += "## " + block_heading(child, t) + "\n\n";
                if (!block->description().empty()) out += sentence(block->description()) + "\n\n";
                out += "Each block also takes `name` (required, unique in `" + child +
                       "`, 1 to 63 characters of `a-z`, `0-9`, `_`, `-`; it appears in URLs) and `type: " + t +
                       "`.\n\n";
                render_spec(*block, child + ".<name>", out);
            }
        }
    }
}

void render_spec(const Spec& spec, const std::string& path, std::string& out) {
    render_table(spec, path, out);
    render_children(spec, path, out);
}

constexpr std::string_view kValueFormats = R"(## Value formats

- **duration**: one or more integers with a unit, `ms`, `s`, `m` or `h`: `250ms`, `30s`, `1h30m`.
  A bare number is refused (seconds or milliseconds?), except `0`.
- **size**: bytes, as an integer (`512`) or with a unit: `kB`/`KB`, `MB`, `GB`, `TB` (powers of 1000)
  or `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024): `64KiB`, `10MB`.
- **address**: `host:port`, `127.0.0.1:9090`, `[::1]:9090`, or `:8080` for all interfaces; port 0 to 65535.
- **boolean**: `true` or `false` (`yes`, `no`, `on` and `off` are refused).
- **secret**: a string that is never logged or echoed in an error. Write it as a substitution rather than in the file.
- **substitutions**, in any value except a block's `name` and `type`: `${env:NAME}` is the environment variable `NAME` (an error when unset);
  `${file:/absolute/path}` is the file's content without its final newline. They may be part of a longer
  value (`Bearer ${env:TOKEN}`); `$${` is a literal `${`. Substituted values are never shown in errors.
)";

}  // namespace

std::string render_reference(const Spec& root, std::string_view title) {
    std::string out = "# " + std::string(title) + "\n\n";
    out += "<!-- Generated from the option specs by render_reference(); do not edit by hand. -->\n\n";
    out += "## Top level\n\n";
    if (!root.description().empty()) out += sentence(root.description()) + "\n\n";
    render_spec(root, "", out);
    out += kValueFormats;
    return out;
}

}  // namespace omnibus::config
