// The list of built-in channel types, and the registry that holds them.
#include "connectors/registry.h"

#include <stdexcept>

#include "connectors/whatsapp/whatsapp_connector.h"

namespace omnibus::connectors {

void register_builtin_connectors(Registry& registry) {
    // One line per channel family, each implemented in its own folder.
    registry.add(whatsapp::connector_type());
}

namespace {

bool is_language_code(std::string_view s) {
    return s.size() == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z';
}

}  // namespace

void add_common_options(config::Spec& spec) {
    spec.string("language")
        .describe("The channel's language (ISO 639-1) for messages too short to tell, when the customer has no "
                  "earlier language either (docs/classification.md). Unset: such messages carry no language.")
        .example("es");
    spec.check([](const config::Section& sec, config::Reporter& r) {
        if (sec.has("language") && !is_language_code(sec.string("language")))
            r.error(sec.position("language"), "language: '" + sec.string("language") +
                                                  "' is not an ISO 639-1 code (two lower-case letters, e.g. es)");
    });
}

void Registry::add(ConnectorType type) {
    if (find(type.name)) throw std::logic_error("connector type registered twice: " + type.name);
    if (!type.create) throw std::logic_error("connector type without a factory: " + type.name);
    add_common_options(type.spec);
    types_.push_back(std::move(type));
}

const ConnectorType* Registry::find(std::string_view name) const {
    for (const auto& t : types_)
        if (t.name == name) return &t;
    return nullptr;
}

std::vector<std::string> Registry::names() const {
    std::vector<std::string> out;
    for (const auto& t : types_) out.push_back(t.name);
    return out;
}

config::BlockTypes Registry::block_types() const {
    return config::BlockTypes{[this](std::string_view type) -> const config::Spec* {
                                  const ConnectorType* t = find(type);
                                  return t ? &t->spec : nullptr;
                              },
                              names()};
}

}  // namespace omnibus::connectors
