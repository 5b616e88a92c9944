// Router::builtin(): config/routing.yaml as compiled into the binary.
#include <stdexcept>

#include "pipeline/route/router.h"

namespace omnibus::pipeline::route {

namespace detail {
extern const std::string_view kBuiltinRules;
}

std::string_view Router::builtin_text() { return detail::kBuiltinRules; }

std::shared_ptr<const Router> Router::builtin() {
    static const std::shared_ptr<const Router> router = [] {
        LoadResult r = load_string(detail::kBuiltinRules, "builtin:config/routing.yaml");
        // A unit test loads the same text; failing here is a build defect, not a user error.
        if (!r.ok()) throw std::logic_error("the built-in routing rules do not load:\n" + r.report());
        return r.router;
    }();
    return router;
}

}  // namespace omnibus::pipeline::route
