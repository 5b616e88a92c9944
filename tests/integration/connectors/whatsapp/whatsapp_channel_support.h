// Shared by the WhatsApp channel's integration tests: a config root with the
// `channels:` block list of the whatsapp type, to load channel blocks from
// YAML exactly as the daemon does.
#pragma once

#include "config/spec.h"
#include "connectors/whatsapp/whatsapp_spec.h"

namespace omnibus::connectors::whatsapp::testing {

inline const config::Spec& root_spec() {
    static const config::Spec wa = whatsapp_spec();
    static const config::Spec root = [] {
        config::Spec s("omnibus", "test root");
        s.blocks("channels", config::BlockTypes{[](std::string_view t) -> const config::Spec* {
                                                    return t == "whatsapp" ? &wa : nullptr;
                                                },
                                                {"whatsapp"}});
        return s;
    }();
    return root;
}

}  // namespace omnibus::connectors::whatsapp::testing
