// omnibusd's identity admin API over HTTP, as an operator uses it: customers seeded on the
// identity log by kcat (as another instance would write them), lookups, link, a merge, unlink,
// erasure, the documented 4xx for bad input, the merge event on omnibus.events, readiness.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>

#include "daemon_fixture.h"

using namespace omnibus::test;
using namespace std::chrono_literals;

namespace {

rapidjson::Document parse_json(const std::string& body) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    INFO(body);
    REQUIRE_FALSE(d.HasParseError());
    REQUIRE(d.IsObject());
    return d;
}

std::vector<std::string> strings_of(const rapidjson::Value& v) {
    std::vector<std::string> out;
    for (const auto& e : v.GetArray()) out.emplace_back(e.GetString());
    return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

struct Admin {
    int port;
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port);
        c.set_connection_timeout(std::chrono::seconds(2));
        c.set_read_timeout(std::chrono::seconds(10));
        return c;
    }
    httplib::Result get(const std::string& path) const { return client().Get(path.c_str()); }
    httplib::Result post(const std::string& path, const std::string& body) const {
        return client().Post(path.c_str(), body, "application/json");
    }
    httplib::Result del(const std::string& path) const { return client().Delete(path.c_str()); }
    httplib::Result patch(const std::string& path, const std::string& body) const {
        return client().Patch(path.c_str(), body, "application/json");
    }
};

// An `observe` request on the identity log, written by kcat the way another instance writes
// one: a CloudEvent keyed r:<request id>, the request JSON as its body.
void seed_observe(const std::string& bootstrap, const std::string& request_id, const std::string& customer,
                  const std::string& identity) {
    const std::string body = R"({"v":1,"op":"observe","id":")" + request_id + R"(","customer":")" + customer +
                             R"(","identities":[")" + identity + R"("],"at_ms":1764072000000,"origin":"seeder"})";
    TempFile value(body + "\n", ".json");
    int rc = -1;
    std::string out = run_capture("kcat -P -b " + bootstrap + " -t omnibus.identity -k r:" + request_id +
                                      " -H ce_specversion=1.0 -H ce_id=" + request_id +
                                      " -H ce_source=/omnibus/instances/seeder -H ce_type=com.omnibus.identity.observe"
                                      " -H ce_time=2025-11-25T12:00:00.000Z -H content-type=application/json < " +
                                      value.path() + " 2>&1",
                                  &rc);
    INFO(out);
    REQUIRE(rc == 0);
}

}  // namespace

TEST_CASE("the identity admin API: look up, link, merge, unlink and erase over the identity log") {
    const std::string config = std::string(kEmbeddedConfig) + R"(pipeline:
  identity:
    email:
      lowercase_local_part: true
)";
    Daemon d(config);
    REQUIRE(d.admin_port() > 0);
    REQUIRE(d.wait_ready(10s));
    INFO(d.output());
    const Admin admin{d.admin_port()};

    // Readiness names the identity check; status shows how far the log was applied.
    auto ready = admin.get("/readyz");
    REQUIRE(ready);
    CHECK(ready->status == 200);
    CHECK(ready->body.find("{\"name\":\"identity\",\"ok\":true}") != std::string::npos);
    auto status = admin.get("/v1/status");
    REQUIRE(status);
    auto st = parse_json(status->body);
    REQUIRE(st.HasMember("identity"));
    CHECK(st["identity"]["caught_up"].GetBool());
    CHECK(st["identity"]["applied_offset"].GetInt64() == 0);
    const std::string bootstrap = st["kafka"]["bootstrap_servers"].GetString();

    // Two customers, first seen on WhatsApp and in the web chat (Ana's is older on the log).
    seed_observe(bootstrap, "0190a3c4-0000-7000-8000-000000000001", "c-ana", "whatsapp:15551234567");
    seed_observe(bootstrap, "0190a3c4-0000-7000-8000-000000000002", "c-bob", "webchat:v-bob");
    REQUIRE(wait_until(
        [&] {
            auto r = admin.get("/v1/identities/webchat:v-bob");
            return r && r->status == 200;
        },
        10s, 20ms));

    SECTION("lookups, link, merge, unlink, erase") {
        // The identity is URL-encoded in the path, or written as it is.
        auto ana = admin.get("/v1/identities/whatsapp%3A15551234567");
        REQUIRE(ana);
        REQUIRE(ana->status == 200);
        auto a = parse_json(ana->body);
        CHECK(std::string(a["identity"].GetString()) == "whatsapp:15551234567");
        CHECK(std::string(a["customer_id"].GetString()) == "c-ana");
        auto bob = admin.get("/v1/identities/webchat:v-bob");
        REQUIRE(bob);
        CHECK(std::string(parse_json(bob->body)["customer_id"].GetString()) == "c-bob");

        auto profile = admin.get("/v1/customers/c-ana");
        REQUIRE(profile);
        REQUIRE(profile->status == 200);
        auto p = parse_json(profile->body);
        CHECK(std::string(p["customer_id"].GetString()) == "c-ana");
        CHECK(std::string(p["created_at"].GetString()) == "2025-11-25T12:00:00.000Z");
        CHECK(strings_of(p["identities"]) == std::vector<std::string>{"whatsapp:15551234567"});
        CHECK(p["aliases"].Empty());

        // Link an email address: normalized with the configured rules (local part lower-cased).
        auto linked = admin.post("/v1/customers/c-ana/identities", R"({"identity":"email:Ana.Silva@Example.COM"})");
        REQUIRE(linked);
        INFO(linked->body);
        REQUIRE(linked->status == 200);
        auto l = parse_json(linked->body);
        CHECK(std::string(l["customer_id"].GetString()) == "c-ana");
        CHECK(contains(strings_of(l["identities"]), "email:ana.silva@example.com"));
        CHECK(l["merged"].Empty());
        auto email = admin.get("/v1/identities/email:ana.silva@example.com");
        REQUIRE(email);
        CHECK(email->status == 200);

        // Bob turns out to be Ana: linking her WhatsApp to him merges him into her (the older).
        auto merged = admin.post("/v1/customers/c-bob/identities", R"({"identity":"whatsapp:15551234567"})");
        REQUIRE(merged);
        INFO(merged->body);
        REQUIRE(merged->status == 200);
        auto m = parse_json(merged->body);
        CHECK(std::string(m["customer_id"].GetString()) == "c-ana");
        REQUIRE(m["merged"].Size() == 1);
        CHECK(std::string(m["merged"][0]["from"].GetString()) == "c-bob");
        CHECK(std::string(m["merged"][0]["into"].GetString()) == "c-ana");

        // The younger id answers the survivor, with everything both had.
        auto younger = admin.get("/v1/customers/c-bob");
        REQUIRE(younger);
        REQUIRE(younger->status == 200);
        auto y = parse_json(younger->body);
        CHECK(std::string(y["customer_id"].GetString()) == "c-ana");
        CHECK(strings_of(y["aliases"]) == std::vector<std::string>{"c-bob"});
        CHECK(contains(strings_of(y["identities"]), "webchat:v-bob"));
        CHECK(contains(strings_of(y["identities"]), "whatsapp:15551234567"));
        auto bob_now = admin.get("/v1/identities/webchat:v-bob");
        REQUIRE(bob_now);
        CHECK(std::string(parse_json(bob_now->body)["customer_id"].GetString()) == "c-ana");

        // The merge is on omnibus.events exactly once.
        std::string events;
        auto merges = [&] {
            events = run_capture("timeout 10 kcat -C -q -e -b " + bootstrap +
                                 " -t omnibus.events -o beginning -f '%h %s\\n' 2>&1");
            std::size_t n = 0;
            for (auto at = events.find("ce_type=com.omnibus.identity.merge"); at != std::string::npos;
                 at = events.find("ce_type=com.omnibus.identity.merge", at + 1))
                ++n;
            return n;
        };
        REQUIRE(wait_until([&] { return merges() >= 1; }, 10s, 100ms));
        CHECK(merges() == 1);
        CHECK(events.find(R"("from":"c-bob","into":"c-ana")") != std::string::npos);

        // Unlink the email: it no longer resolves; a second unlink is refused by the state machine.
        auto unlinked = admin.del("/v1/customers/c-ana/identities/email:ana.silva@example.com");
        REQUIRE(unlinked);
        INFO(unlinked->body);
        CHECK(unlinked->status == 200);
        CHECK_FALSE(contains(strings_of(parse_json(unlinked->body)["identities"]), "email:ana.silva@example.com"));
        auto gone = admin.get("/v1/identities/email%3Aana.silva%40example.com");
        REQUIRE(gone);
        CHECK(gone->status == 404);
        auto again = admin.del("/v1/customers/c-ana/identities/email:ana.silva@example.com");
        REQUIRE(again);
        CHECK(again->status == 409);
        CHECK(parse_json(again->body)["error"].IsString());

        // Erasing through the alias erases the person: every lookup is 404 afterwards.
        auto erased = admin.del("/v1/customers/c-bob");
        REQUIRE(erased);
        INFO(erased->body);
        REQUIRE(erased->status == 200);
        auto e = strings_of(parse_json(erased->body)["erased"]);
        CHECK(contains(e, "c-ana"));
        CHECK(contains(e, "c-bob"));
        for (const char* path : {"/v1/customers/c-ana", "/v1/customers/c-bob", "/v1/identities/webchat:v-bob",
                                 "/v1/identities/whatsapp:15551234567"}) {
            auto r = admin.get(path);
            REQUIRE(r);
            INFO(path);
            CHECK(r->status == 404);
            CHECK(parse_json(r->body)["error"].IsString());
        }
        auto erased_again = admin.del("/v1/customers/c-ana");
        REQUIRE(erased_again);
        CHECK(erased_again->status == 404);
    }

    SECTION("attributes: a merge patch of strings through the log, null removes, bad ones refused") {
        auto set = admin.patch("/v1/customers/c-ana/attributes",
                               R"({"tier":"vip","lifetime_value":"2500.00","time_zone":"Europe/Lisbon"})");
        REQUIRE(set);
        INFO(set->body);
        REQUIRE(set->status == 200);
        auto profile = admin.get("/v1/customers/c-ana");
        REQUIRE(profile);
        auto p = parse_json(profile->body);
        REQUIRE(p.HasMember("attributes"));
        CHECK(std::string(p["attributes"]["tier"].GetString()) == "vip");
        CHECK(std::string(p["attributes"]["lifetime_value"].GetString()) == "2500.00");
        CHECK(std::string(p["attributes"]["time_zone"].GetString()) == "Europe/Lisbon");

        auto removed = admin.patch("/v1/customers/c-ana/attributes", R"({"tier":null,"tier_since":"2026"})");
        REQUIRE(removed);
        REQUIRE(removed->status == 200);
        auto p2 = parse_json(admin.get("/v1/customers/c-ana")->body);
        CHECK_FALSE(p2["attributes"].HasMember("tier"));
        CHECK(std::string(p2["attributes"]["tier_since"].GetString()) == "2026");
        CHECK(std::string(p2["attributes"]["lifetime_value"].GetString()) == "2500.00");

        struct Case {
            const char* what;
            httplib::Result result;
            int status;
        };
        Case cases[] = {
            {"not JSON", admin.patch("/v1/customers/c-ana/attributes", "{"), 400},
            {"empty object", admin.patch("/v1/customers/c-ana/attributes", "{}"), 400},
            {"a number", admin.patch("/v1/customers/c-ana/attributes", R"({"tier":3})"), 400},
            {"bad name", admin.patch("/v1/customers/c-ana/attributes", R"({"Tier Name":"x"})"), 400},
            {"value too long", admin.patch("/v1/customers/c-ana/attributes",
                                           "{\"note\":\"" + std::string(300, 'x') + "\"}"), 400},
            {"unknown zone", admin.patch("/v1/customers/c-ana/attributes", R"({"time_zone":"Mars/Base"})"), 400},
            {"zone as a path", admin.patch("/v1/customers/c-ana/attributes", R"({"time_zone":"../../etc/passwd"})"),
             400},
            {"unknown customer", admin.patch("/v1/customers/c-nobody/attributes", R"({"tier":"vip"})"), 404},
        };
        for (auto& c : cases) {
            INFO(c.what);
            REQUIRE(c.result);
            INFO(c.result->body);
            CHECK(c.result->status == c.status);
            CHECK(parse_json(c.result->body)["error"].IsString());
        }
        auto p3 = parse_json(admin.get("/v1/customers/c-ana")->body);
        CHECK(std::string(p3["attributes"]["time_zone"].GetString()) == "Europe/Lisbon");
        CHECK_FALSE(p3["attributes"].HasMember("note"));
    }

    SECTION("bad input gets the documented 4xx, each with a JSON error") {
        struct Case {
            const char* what;
            httplib::Result result;
            int status;
        };
        Case cases[] = {
            {"bad JSON", admin.post("/v1/customers/c-ana/identities", "{\"identity\":"), 400},
            {"not an object", admin.post("/v1/customers/c-ana/identities", "[1]"), 400},
            {"no identity", admin.post("/v1/customers/c-ana/identities", "{}"), 400},
            {"identity not a string", admin.post("/v1/customers/c-ana/identities", R"({"identity":5})"), 400},
            {"not kind:value", admin.post("/v1/customers/c-ana/identities", R"({"identity":"ana"})"), 400},
            {"not an email", admin.post("/v1/customers/c-ana/identities", R"({"identity":"email:ana"})"), 400},
            {"phone not E.164", admin.post("/v1/customers/c-ana/identities", R"({"identity":"phone:030123456"})"), 400},
            {"unknown customer", admin.post("/v1/customers/c-nobody/identities", R"({"identity":"shop:42"})"), 404},
            {"lookup of a non-identity", admin.get("/v1/identities/Not%20One"), 400},
            {"unknown identity", admin.get("/v1/identities/whatsapp:19999999999"), 404},
            {"unknown customer profile", admin.get("/v1/customers/c-nobody"), 404},
            {"unlink from an unknown customer", admin.del("/v1/customers/c-nobody/identities/shop:42"), 404},
            {"unlink of a non-identity", admin.del("/v1/customers/c-ana/identities/nope"), 400},
            {"erase an unknown customer", admin.del("/v1/customers/c-nobody"), 404},
        };
        for (auto& c : cases) {
            INFO(c.what);
            REQUIRE(c.result);
            INFO(c.result->body);
            CHECK(c.result->status == c.status);
            CHECK(c.result->get_header_value("Content-Type") == "application/json");
            auto body = parse_json(c.result->body);
            CHECK(body["error"].IsString());
        }
        // Nothing was linked by any of them.
        auto profile = admin.get("/v1/customers/c-ana");
        REQUIRE(profile);
        CHECK(strings_of(parse_json(profile->body)["identities"]) == std::vector<std::string>{"whatsapp:15551234567"});
    }

    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(10s));
    CHECK(d.process().exit_code() == 0);
}

TEST_CASE("with the pipeline disabled there is no identity check and no customer routes") {
    Daemon d(std::string(kEmbeddedConfig) + "pipeline:\n  enabled: false\n");
    REQUIRE(d.admin_port() > 0);
    REQUIRE(d.wait_ready(10s));
    auto ready = d.get("/readyz");
    REQUIRE(ready);
    CHECK(ready->body.find("\"identity\"") == std::string::npos);
    auto r = d.get("/v1/customers/c-1");
    REQUIRE(r);
    CHECK(r->status == 404);
    d.process().signal(SIGTERM);
    REQUIRE(d.process().wait_exit(10s));
    CHECK(d.process().exit_code() == 0);
}
