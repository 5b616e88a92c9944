// The admin API's customer and identity routes: look up who an identity is, read a customer's
// profile, link and unlink identities, erase a customer. Every change goes through the
// identity log (IdentityService::submit) and is answered once it applied here.
//
// Routes (docs/pipeline.md, "Admin API"):
//   GET    /v1/identities/<identity>                  → {"identity", "customer_id"}
//   GET    /v1/customers/<id>                         → the survivor's profile
//   POST   /v1/customers/<id>/identities              {"identity": ...} → link
//   DELETE /v1/customers/<id>/identities/<identity>   → unlink
//   DELETE /v1/customers/<id>                         → erase
// While the identity service does not exist (the topics are not there yet, the pipeline is
// off, or shutdown began) every route answers 503 {"error":"identity not ready"}.
//
// Threads: handlers run on the admin server's pool threads, concurrently. The object holds
// only what it was built with (immutable); the service is reached through WithIdentity, whose
// owner (the daemon) guarantees it is not stopped while a handler uses it. A handler waits for
// an outcome (bounded) on its own thread without holding the service.
#pragma once

#include <chrono>
#include <functional>

#include "daemon/admin_server.h"
#include "pipeline/identity/identity.h"

namespace omnibus::pipeline::identity {
class IdentityService;
}

namespace omnibus::daemon {

// Runs the function with the identity service and returns true, or returns false when there
// is none (yet, or any more). The service stays usable for the duration of the call.
using WithIdentity = std::function<bool(const std::function<void(pipeline::identity::IdentityService&)>&)>;

struct CustomerApiOptions {
    pipeline::identity::EmailRules email;            // how linked email addresses are normalized
    std::chrono::milliseconds wait{std::chrono::seconds(5)};  // for a request's outcome
};

class CustomerApi {
public:
    CustomerApi(WithIdentity with_identity, CustomerApiOptions options);

    // Adds the routes; call before the server starts. `this` must outlive the server.
    void register_routes(AdminServer& server);

    // The handlers, callable without a server (tests).
    AdminResponse get_identity(const AdminRequest& req) const;
    AdminResponse get_customer(const AdminRequest& req) const;
    AdminResponse link(const AdminRequest& req) const;
    AdminResponse unlink(const AdminRequest& req) const;
    AdminResponse erase(const AdminRequest& req) const;

private:
    WithIdentity with_identity_;
    CustomerApiOptions options_;
};

}  // namespace omnibus::daemon
