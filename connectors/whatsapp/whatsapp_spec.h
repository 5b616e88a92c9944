// The options of a `type: whatsapp` channel block, declared once: validation,
// defaults and docs/configuration.md all come from this spec.
#pragma once

#include "config/spec.h"

namespace omnibus::connectors::whatsapp {

config::Spec whatsapp_spec();

}  // namespace omnibus::connectors::whatsapp
