// The list of built-in channel types, and the registry that holds them.
#include "connectors/registry.h"

#include <stdexcept>

#include "connectors/whatsapp/whatsapp_connector.h"

namespace omnibus::connectors {

void register_builtin_connectors(Registry& registry) {
    // One line per channel family, each implemented in its own folder.
    registry.add(whatsapp::connector_type());
}

void Registry::add(ConnectorType type) {
    if (find(type.name)) throw std::logic_error("connector type registered twice: " + type.name);
    if (!type.create) throw std::logic_error("connector type without a factory: " + type.name);
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
