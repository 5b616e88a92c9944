// IdentityService over the mock cluster: two instances racing a first contact agree on one
// customer, merges and their events, erasure with tombstones on the log, rejected requests,
// and an instance that lost its store coming back whole from the log. kcat reads what the
// services wrote, as an independent client.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <mutex>
#include <span>
#include <thread>

#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka_test_support.h"
#include "pipeline/identity/identity_service.h"
#include "support/scratch_dir.h"

using namespace omnibus;
using namespace omnibus::kafka;
using namespace omnibus::kafka::test;
using namespace omnibus::pipeline::identity;
using omnibus::test::ScratchDir;

namespace {

constexpr const char* kTopic = "omnibus.identity";
constexpr const char* kEvents = "omnibus.events";

struct Instance {
    Instance(const KafkaSettings& s, const std::string& dir, const std::string& origin)
        : producer(s, reg),
          service(s, reg, producer,
                  IdentityServiceOptions{dir + "/identity-" + origin, kTopic, kEvents, origin, std::chrono::hours(24),
                                         [this](std::span<const std::string> ids) {
                                             std::lock_guard lock(erased_mu);
                                             erased.emplace_back(ids.begin(), ids.end());
                                         }}) {}
    metrics::Registry reg;
    Producer producer;
    // What on_erasure was told, call by call (before `service`: it may call at once).
    std::mutex erased_mu;
    std::vector<std::vector<std::string>> erased;
    IdentityService service;

    std::vector<std::vector<std::string>> erasures() {
        std::lock_guard lock(erased_mu);
        return erased;
    }

    Outcome run(Request r) {
        std::promise<Outcome> p;
        auto f = p.get_future();
        service.submit(std::move(r), [&p](const Outcome& o) { p.set_value(o); });
        REQUIRE(f.wait_for(10s) == std::future_status::ready);
        return f.get();
    }
};

Request observe(std::string proposed, std::vector<std::string> identities) {
    Request r;
    r.op = Op::observe;
    r.customer = std::move(proposed);
    r.identities = std::move(identities);
    return r;
}

Request admin(Op op, std::string customer, std::vector<std::string> identities = {}) {
    Request r;
    r.op = op;
    r.customer = std::move(customer);
    r.identities = std::move(identities);
    r.origin = "";  // the instance's own
    return r;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    for (auto& l : split(text, '\n'))
        if (!l.empty()) out.push_back(l);
    return out;
}

KafkaSettings identity_settings(EmbeddedCluster& cluster) {
    cluster.create_topic(kTopic, 1);
    cluster.create_topic(kEvents, 3);
    return settings_for(cluster);
}

}  // namespace

TEST_CASE("two instances racing a first contact end with one customer, the same on both",
          "[pipeline][identity][integration]") {
    EmbeddedCluster cluster;
    KafkaSettings s = identity_settings(cluster);
    ScratchDir dir;
    Instance a(s, dir.path(), "a"), b(s, dir.path(), "b");
    REQUIRE(a.service.wait_caught_up(10s));
    REQUIRE(b.service.wait_caught_up(10s));

    for (int round = 0; round < 20; ++round) {
        const std::vector<std::string> ids{"whatsapp:1555000" + std::to_string(round),
                                           "phone:+1555000" + std::to_string(round)};
        // Both instances see the customer's first message at the same moment.
        std::promise<Outcome> pa, pb;
        std::thread ta([&] { a.service.submit(observe("ca-" + std::to_string(round), ids), [&](const Outcome& o) { pa.set_value(o); }); });
        std::thread tb([&] { b.service.submit(observe("cb-" + std::to_string(round), ids), [&](const Outcome& o) { pb.set_value(o); }); });
        ta.join();
        tb.join();
        auto fa = pa.get_future(), fb = pb.get_future();
        REQUIRE(fa.wait_for(10s) == std::future_status::ready);
        REQUIRE(fb.wait_for(10s) == std::future_status::ready);
        Outcome oa = fa.get(), ob = fb.get();
        REQUIRE(oa.ok);
        REQUIRE(ob.ok);
        CHECK(oa.customer == ob.customer);            // one customer
        CHECK(oa.created != ob.created);              // created by exactly one of them
        REQUIRE(a.service.wait_caught_up(10s));
        REQUIRE(b.service.wait_caught_up(10s));
        CHECK(a.service.resolve_identity(ids[0]) == oa.customer);
        CHECK(b.service.resolve_identity(ids[1]) == oa.customer);
    }
}

TEST_CASE("a merge answers the survivor everywhere and is reported once on omnibus.events",
          "[pipeline][identity][integration]") {
    EmbeddedCluster cluster;
    KafkaSettings s = identity_settings(cluster);
    ScratchDir dir;
    Instance a(s, dir.path(), "a"), b(s, dir.path(), "b");

    Outcome wa = a.run(observe("c-wa", {"whatsapp:15551234567", "phone:+15551234567"}));
    REQUIRE(wa.created);
    Outcome mail = b.run(observe("c-mail", {"email:ana@example.com"}));
    REQUIRE(mail.created);
    // Web chat with a verified identity carrying both the phone and the email.
    Outcome web = b.run(observe("c-web", {"webchat:v-1", "phone:+15551234567", "email:ana@example.com"}));
    REQUIRE(web.ok);
    CHECK(web.customer == "c-wa");  // the older customer survives
    CHECK(web.merges == std::vector<Merge>{{"c-mail", "c-wa"}});
    REQUIRE(a.service.wait_caught_up(10s));
    CHECK(a.service.resolve_identity("email:ana@example.com") == "c-wa");
    CHECK(a.service.customer("c-mail")->id == "c-wa");
    CHECK(a.service.customer("c-wa")->identities.size() == 4);

    std::string events;
    REQUIRE(wait_until(
        [&] {
            events = run("timeout 10 kcat -C -q -e -b " + s.brokers + " -t " + kEvents +
                         " -o beginning -f '%h|%s\\n' 2>&1");
            return events.find("c-mail") != std::string::npos;
        },
        10s));
    CHECK(events.find("ce_type=com.omnibus.identity.merge") != std::string::npos);
    CHECK(events.find("\"from\":\"c-mail\",\"into\":\"c-wa\"") != std::string::npos);
    CHECK(lines_of(events).size() == 1);  // written by the requester only, not by every instance
}

TEST_CASE("admin link to an unknown customer is rejected and its record tombstoned",
          "[pipeline][identity][integration]") {
    EmbeddedCluster cluster;
    KafkaSettings s = identity_settings(cluster);
    ScratchDir dir;
    Instance a(s, dir.path(), "a");
    Outcome bad = a.run(admin(Op::link, "c-nobody", {"email:who@example.com"}));
    CHECK_FALSE(bad.ok);
    CHECK(bad.error == "unknown customer c-nobody");
    CHECK_FALSE(a.service.resolve_identity("email:who@example.com"));
    std::string log;
    REQUIRE(wait_until(
        [&] {
            log = run("timeout 10 kcat -C -q -e -Z -b " + s.brokers + " -t " + kTopic + " -o beginning -f '%k=%s\\n' 2>&1");
            return log.find("=NULL") != std::string::npos;
        },
        10s));
    auto lines = lines_of(log);
    REQUIRE(lines.size() == 2);  // the request, then its tombstone under the same key
    CHECK(lines[0].substr(0, lines[0].find('=')) == lines[1].substr(0, lines[1].find('=')));
}

TEST_CASE("erasure: gone on every instance, the requests that named the person are tombstoned",
          "[pipeline][identity][integration]") {
    EmbeddedCluster cluster;
    KafkaSettings s = identity_settings(cluster);
    ScratchDir dir;
    Instance a(s, dir.path(), "a"), b(s, dir.path(), "b");
    Outcome c = a.run(observe("c-1", {"whatsapp:4915100000000", "phone:+4915100000000"}));
    REQUIRE(a.run(admin(Op::link, c.customer, {"email:erase.me@example.com"})).ok);
    (void)b.run(observe("c-other", {"line:U123"}));
    Outcome e = b.run(admin(Op::erase, "c-1"));
    REQUIRE(e.ok);
    REQUIRE(a.service.wait_caught_up(10s));
    for (Instance* i : {&a, &b}) {
        CHECK_FALSE(i->service.resolve_identity("whatsapp:4915100000000"));
        CHECK_FALSE(i->service.resolve_identity("email:erase.me@example.com"));
        CHECK_FALSE(i->service.customer("c-1"));
        CHECK(i->service.resolve_identity("line:U123") == "c-other");
    }
    // Both requests that named the person get a tombstone (from each instance: idempotent);
    // the other customer's request and the erase request itself do not.
    std::string log;
    REQUIRE(wait_until(
        [&] {
            log = run("timeout 10 kcat -C -q -e -Z -b " + s.brokers + " -t " + kTopic + " -o beginning -f '%k=%s\\n' 2>&1");
            std::size_t nulls = 0;
            for (const auto& line : lines_of(log))
                if (line.size() > 5 && line.substr(line.size() - 5) == "=NULL") ++nulls;
            return nulls >= 4;  // 2 requests x 2 instances
        },
        10s));
    std::map<std::string, std::vector<std::string>> by_key;
    for (const auto& line : lines_of(log))
        if (auto eq = line.find('='); eq != std::string::npos) by_key[line.substr(0, eq)].push_back(line.substr(eq + 1));
    int erased_keys = 0, kept_keys = 0;
    for (const auto& [key, values] : by_key) {
        const bool named_person = values.front().find("4915100000000") != std::string::npos ||
                                  values.front().find("erase.me") != std::string::npos;
        const bool tombstoned = values.back() == "NULL";
        CHECK(named_person == tombstoned);
        (tombstoned ? erased_keys : kept_keys) += 1;
    }
    CHECK(erased_keys == 2);
    CHECK(kept_keys == 2);  // the other customer's observe and the erase request

    // Every instance tells its channels, once, with the identities the person had; so does
    // one that reads the log from the start later (a replay).
    const std::vector<std::vector<std::string>> told{
        {"whatsapp:4915100000000", "phone:+4915100000000", "email:erase.me@example.com"}};
    CHECK(b.erasures() == told);  // before its requester heard the outcome
    CHECK(wait_until([&] { return a.erasures() == told; }, 10s));
    Instance late(s, dir.path(), "late");
    REQUIRE(late.service.wait_caught_up(10s));
    CHECK(wait_until([&] { return late.erasures() == told; }, 10s));
    CHECK(a.erasures() == told);  // once
}

TEST_CASE("an instance that lost its store comes back whole from the log", "[pipeline][identity][integration]") {
    EmbeddedCluster cluster;
    KafkaSettings s = identity_settings(cluster);
    ScratchDir dir;
    std::vector<std::string> ids;
    {
        Instance a(s, dir.path(), "a");
        for (int i = 0; i < 200; ++i) {
            ids.push_back("whatsapp:" + std::to_string(4400000000 + i));
            std::promise<void> done;
            a.service.submit(observe("c-" + std::to_string(i), {ids.back(), "phone:+" + std::to_string(4400000000 + i % 150)}),
                             [&](const Outcome&) { done.set_value(); });
            REQUIRE(done.get_future().wait_for(10s) == std::future_status::ready);
        }
    }
    std::filesystem::remove_all(dir.path() + "/identity-a");
    Instance again(s, dir.path(), "a");
    REQUIRE(again.service.wait_caught_up(10s));
    CHECK(again.service.applied_offset() == 200);
    for (int i = 0; i < 200; ++i) {
        INFO(ids[i]);
        // Numbers 150..199 share a phone with 0..49: those customers merged into the older one.
        CHECK(again.service.resolve_identity(ids[i]) == "c-" + std::to_string(i % 150));
    }
}
