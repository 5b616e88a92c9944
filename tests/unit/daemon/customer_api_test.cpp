// The customer API before the identity service exists: every route answers 503 with one JSON
// error, whatever the request (the rest is driven over HTTP in tests/integration/daemon).
#include <catch2/catch.hpp>

#include "daemon/customer_api.h"

using namespace omnibus::daemon;

TEST_CASE("without an identity service every customer route answers 503 identity not ready") {
    CustomerApi api([](const auto&) { return false; }, CustomerApiOptions{});
    auto req = [](std::vector<std::string> matches, std::string body = {}) {
        AdminRequest r;
        r.matches = std::move(matches);
        r.body = std::move(body);
        return r;
    };
    const std::vector<AdminResponse> answers{
        api.get_identity(req({"/v1/identities/whatsapp:1", "whatsapp:1"})),
        api.get_identity(req({"/v1/identities/not an identity", "not an identity"})),
        api.get_customer(req({"/v1/customers/c-1", "c-1"})),
        api.link(req({"/v1/customers/c-1/identities", "c-1"}, "{not json")),
        api.unlink(req({"/v1/customers/c-1/identities/email:a@b.c", "c-1", "email:a@b.c"})),
        api.erase(req({"/v1/customers/c-1", "c-1"})),
    };
    for (const auto& a : answers) {
        CHECK(a.status == 503);
        CHECK(a.content_type == "application/json");
        CHECK(a.body == "{\"error\":\"identity not ready\"}\n");
    }
}
