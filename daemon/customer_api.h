// The admin API's customer and identity routes: look up who an identity is, read a customer's
// profile, link and unlink identities, erase a customer. Every change goes through the
// identity log (IdentityService::submit) and is answered once it applied here.
//
// Routes (docs/pipeline.md, "Admin API"):
//   GET    /v1/identities/<identity>                  → {"identity", "customer_id"}
//   GET    /v1/customers/<id>                         → the survivor's profile
//   POST   /v1/customers/<id>/identities              {"identity": ...} → link
//   DELETE /v1/customers/<id>/identities/<identity>   → unlink
//   GET    /v1/customers/<id>/messages                → the history, newest first, paged
//                                                      (?channel= &conversation= &limit= &before=)
//   DELETE /v1/customers/<id>                         → erase (history first, then identity)
// The profile carries the customer's conversations and the messages route answers when this
// instance holds the customer's history partition. When another instance holds it, both ask
// that one (found in the instance directory, instance_directory.h) with the request marked as
// forwarded: the messages route answers with the holder's status and body, the profile takes
// the holder's conversations. A forwarded request is never forwarded again. When no holder is
// known, it does not answer, or the request was forwarded already, the profile says so
// ("history": {"held_here": false, "partition": N, "source": ...}) and the messages route
// answers 421 with the partition and the reason.
// While the identity service does not exist (the topics are not there yet, the pipeline is
// off, or shutdown began) every route answers 503 {"error":"identity not ready"}.
//
// Threads: handlers run on the admin server's pool threads, concurrently. The object holds
// only what it was built with (immutable); the service is reached through WithIdentity, whose
// owner (the daemon) guarantees it is not stopped while a handler uses it. A handler waits for
// an outcome (bounded) on its own thread without holding the service; a forward waits (bounded,
// admin_forwarder.h) on its own thread too, holding neither the service nor the stage.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "daemon/admin_forwarder.h"
#include "daemon/admin_server.h"
#include "daemon/instance_record.h"
#include "pipeline/identity/identity.h"

namespace omnibus::pipeline::identity {
class IdentityService;
}
namespace omnibus::pipeline::history {
class ConversationStage;
}

namespace omnibus::daemon {

// Runs the function with the identity service and returns true, or returns false when there
// is none (yet, or any more). The service stays usable for the duration of the call.
using WithIdentity = std::function<bool(const std::function<void(pipeline::identity::IdentityService&)>&)>;
// The same for the conversation stage (the history). An empty function: no history here.
using WithHistory = std::function<bool(const std::function<void(pipeline::history::ConversationStage&)>&)>;

struct CustomerApiOptions {
    pipeline::identity::EmailRules email;            // how linked email addresses are normalized
    std::chrono::milliseconds wait{std::chrono::seconds(5)};  // for a request's outcome
    // Another instance holding a history partition (any thread); unset or nullopt: none known.
    std::function<std::optional<Holder>(int partition)> holder;
    // Sends a GET on to another instance and waits for its answer (admin_forwarder.h); unset:
    // requests are never forwarded.
    std::function<ForwardResponse(const ForwardRequest&)> forward;
};

class CustomerApi {
public:
    CustomerApi(WithIdentity with_identity, CustomerApiOptions options, WithHistory with_history = {});

    // Adds the routes; call before the server starts. `this` must outlive the server.
    void register_routes(AdminServer& server);

    // The handlers, callable without a server (tests).
    AdminResponse get_identity(const AdminRequest& req) const;
    AdminResponse get_customer(const AdminRequest& req) const;
    AdminResponse link(const AdminRequest& req) const;
    AdminResponse unlink(const AdminRequest& req) const;
    AdminResponse set_attributes(const AdminRequest& req) const;
    AdminResponse erase(const AdminRequest& req) const;
    AdminResponse messages(const AdminRequest& req) const;

private:
    // What the holder of `partition` answered to `target`: nullopt with `reason` set when
    // there was no usable answer ("forwarded", "holder_unknown", "holder_unavailable").
    std::optional<ForwardResponse> ask_holder(int partition, const AdminRequest& req, const std::string& target,
                                              std::string& reason) const;
    bool with_history(const std::function<void(pipeline::history::ConversationStage&)>& fn) const {
        return with_history_ && with_history_(fn);
    }

    WithIdentity with_identity_;
    WithHistory with_history_;
    CustomerApiOptions options_;
};

}  // namespace omnibus::daemon
