// The identity state machine: identity strings, request codec, observe / link / unlink /
// erase, merges (the older customer survives), races between instances, and replays of a
// compacted log after an erasure.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "pipeline/identity/identity.h"
#include "pipeline/identity/memory_store.h"

using namespace omnibus::pipeline::identity;

namespace {

// A log of requests, as the single partition of omnibus.identity holds them: offset →
// request. A tombstone marks a request for compaction, which removes it only once every
// live instance has read past it (the topic's min.compaction.lag.ms).
struct Log {
    std::map<std::int64_t, Request> records;
    std::vector<std::string> tombstoned;
    std::int64_t next = 0;

    std::int64_t append(Request r) {
        records.emplace(next, std::move(r));
        return next++;
    }
    void tombstone(const std::string& request_id) { tombstoned.push_back(request_id); }
    void compact(std::int64_t below) {
        for (auto it = records.begin(); it != records.end() && it->first <= below;)
            it = std::find(tombstoned.begin(), tombstoned.end(), it->second.id) != tombstoned.end() ? records.erase(it)
                                                                                                 : std::next(it);
    }
};

// One instance: applies the log from where it stopped.
struct Instance {
    MemoryStore store;
    std::int64_t applied = -1;
    std::map<std::string, Outcome> outcomes;  // by request id

    void catch_up(const Log& log) {
        for (auto it = log.records.upper_bound(applied); it != log.records.end(); ++it) {
            outcomes[it->second.id] = apply(it->second, it->first, store);
            applied = it->first;
        }
    }
    std::string customer_of(const std::string& identity) {
        auto c = store.customer_of(identity);
        if (!c) return "";
        auto r = resolve(store, *c);
        return r ? r->id : "";
    }
};

Request observe(std::string id, std::string proposed, std::vector<std::string> identities, std::int64_t at = 1000) {
    return Request{Op::observe, std::move(id), std::move(proposed), std::move(identities), at, "test", {}};
}
Request link(std::string id, std::string customer, std::string identity) {
    return Request{Op::link, std::move(id), std::move(customer), {std::move(identity)}, 2000, "admin", {}};
}
Request unlink(std::string id, std::string customer, std::string identity) {
    return Request{Op::unlink, std::move(id), std::move(customer), {std::move(identity)}, 3000, "admin", {}};
}
Request erase(std::string id, std::string customer) {
    return Request{Op::erase, std::move(id), std::move(customer), {}, 4000, "admin", {}};
}

}  // namespace

TEST_CASE("identity strings: kind, checks", "[pipeline][identity]") {
    CHECK(kind_of("whatsapp:15551234567") == "whatsapp");
    CHECK(kind_of("phone:+15551234567") == "phone");
    CHECK(kind_of("messenger:page:psid") == "messenger");
    CHECK(kind_of("nokind") == "");
    CHECK(kind_of(":x") == "");
    CHECK(kind_of("email:") == "");
    CHECK(kind_of("Email:a@b.c") == "");  // kinds are lower case

    CHECK(check_identity("email:ana@example.com").ok());
    CHECK_FALSE(check_identity("email:ana @example.com").ok());
    CHECK_FALSE(check_identity("email:ana\n@example.com").ok());
    CHECK_FALSE(check_identity(std::string("shop:") + std::string(400, 'x')).ok());
    CHECK_FALSE(check_identity("shop:\xff\xfe").ok());
    CHECK(check_identity("webchat:访客-1").ok());
}

TEST_CASE("email addresses: trimmed, domain lower-cased, folding only when configured", "[pipeline][identity]") {
    CHECK(normalize_email("  Ana.Silva@Example.COM ") == "Ana.Silva@example.com");
    CHECK(normalize_email("ana@example.com", {.lowercase_local_part = true}) == "ana@example.com");
    CHECK(normalize_email("Ana@Example.com", {.lowercase_local_part = true}) == "ana@example.com");
    CHECK(normalize_email("a.n.a+shop@gmail.com") == "a.n.a+shop@gmail.com");
    CHECK(normalize_email("A.n.a+shop@GoogleMail.com", {.fold_gmail = true}) == "ana@gmail.com");
    CHECK(normalize_email("a.n.a+shop@example.com", {.fold_gmail = true}) == "a.n.a+shop@example.com");
    CHECK_FALSE(normalize_email("ana"));
    CHECK_FALSE(normalize_email("@example.com"));
    CHECK_FALSE(normalize_email("ana@"));
    CHECK_FALSE(normalize_email("ana@localhost"));
    CHECK_FALSE(normalize_email("ana@example..com"));
    CHECK_FALSE(normalize_email("an a@example.com"));
    CHECK_FALSE(normalize_email("a@b@example.com"));
    CHECK_FALSE(normalize_email(std::string(300, 'a') + "@example.com"));
    CHECK_FALSE(normalize_email("+@gmail.com", {.fold_gmail = true}));
}

TEST_CASE("requests round-trip through JSON and bad ones are refused with the field", "[pipeline][identity]") {
    Request r = observe("0190-a", "c-1", {"whatsapp:1555", "phone:+1555"}, 1234);
    auto back = decode_request(encode(r));
    REQUIRE(back.ok());
    CHECK(*back == r);
    CHECK(request_key("0190-a") == "r:0190-a");

    auto field_of = [](std::string_view json) {
        auto d = decode_request(json);
        return d.ok() ? std::string("ok") : d.error().field;
    };
    CHECK(field_of("[]") == "body");
    CHECK(field_of("{\"v\":2,\"op\":\"observe\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[\"a:b\"]}") == "v");
    CHECK(field_of("{\"v\":1,\"op\":\"merge\",\"id\":\"x\",\"customer\":\"c\"}") == "op");
    CHECK(field_of("{\"v\":1,\"op\":\"observe\",\"customer\":\"c\",\"identities\":[\"a:b\"]}") == "id");
    CHECK(field_of("{\"v\":1,\"op\":\"observe\",\"id\":\"x\",\"identities\":[\"a:b\"]}") == "customer");
    CHECK(field_of("{\"v\":1,\"op\":\"observe\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[]}") == "identities");
    CHECK(field_of("{\"v\":1,\"op\":\"observe\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[\"nokind\"]}") ==
          "identities");
    CHECK(field_of("{\"v\":1,\"op\":\"link\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[\"a:b\",\"c:d\"]}") ==
          "identities");
    CHECK(field_of("{\"v\":1,\"op\":\"erase\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[\"a:b\"]}") ==
          "identities");
    CHECK(field_of("{\"v\":1,\"op\":\"erase\",\"id\":\"x\",\"customer\":\"c\"}") == "ok");
    CHECK(field_of("{\"v\":1,\"op\":\"observe\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[\"a:b\"],"
                   "\"at_ms\":\"soon\"}") == "at_ms");
    CHECK(field_of("not json") == "body");
    // Duplicated identities collapse; the order of first appearance stays.
    auto dup = decode_request(
        "{\"v\":1,\"op\":\"observe\",\"id\":\"x\",\"customer\":\"c\",\"identities\":[\"a:1\",\"b:2\",\"a:1\"]}");
    REQUIRE(dup.ok());
    CHECK(dup->identities == std::vector<std::string>{"a:1", "b:2"});
}

TEST_CASE("customers round-trip through JSON", "[pipeline][identity]") {
    Customer c{"c-1", 7, 1700000000000, std::nullopt, {"whatsapp:1", "phone:+1"}, {"c-9"}, {"r1", "r2"}, {}};
    CHECK(decode_customer(encode(c)) == c);
    c.merged_into = "c-0";
    CHECK(decode_customer(encode(c)) == c);
    CHECK_FALSE(decode_customer("{}"));
    CHECK_FALSE(decode_customer("{\"id\":\"x\",\"created_seq\":1,\"created_ms\":1,\"identities\":[1]}"));
}

TEST_CASE("a first contact creates a customer with every identity it showed", "[pipeline][identity]") {
    MemoryStore s;
    Outcome o = apply(observe("r1", "c-a", {"whatsapp:1555", "phone:+1555"}), 0, s);
    REQUIRE(o.ok);
    CHECK(o.created);
    CHECK(o.customer == "c-a");
    CHECK(o.linked == std::vector<std::string>{"whatsapp:1555", "phone:+1555"});
    CHECK(s.customer_of("whatsapp:1555") == "c-a");
    CHECK(s.customer_of("phone:+1555") == "c-a");
    auto c = s.customer("c-a");
    REQUIRE(c);
    CHECK(c->created_seq == 0);
    CHECK(c->created_ms == 1000);
    CHECK(c->requests == std::vector<std::string>{"r1"});

    // The same identities again: nothing changes, no new customer.
    Outcome again = apply(observe("r2", "c-b", {"whatsapp:1555", "phone:+1555"}), 1, s);
    REQUIRE(again.ok);
    CHECK_FALSE(again.created);
    CHECK(again.customer == "c-a");
    CHECK(again.linked.empty());
    CHECK_FALSE(s.customer("c-b"));
}

TEST_CASE("a known identity brings a new one to its customer", "[pipeline][identity]") {
    MemoryStore s;
    (void)apply(observe("r1", "c-a", {"whatsapp:1555", "phone:+1555"}), 0, s);
    // Web chat with a verified phone: the visitor joins the WhatsApp customer.
    Outcome o = apply(observe("r2", "c-w", {"webchat:v1", "phone:+1555", "shop:42"}), 1, s);
    REQUIRE(o.ok);
    CHECK_FALSE(o.created);
    CHECK(o.customer == "c-a");
    CHECK(o.linked == std::vector<std::string>{"webchat:v1", "shop:42"});
    CHECK(s.customer_of("webchat:v1") == "c-a");
    CHECK(resolve(s, "c-a")->identities ==
          std::vector<std::string>{"whatsapp:1555", "phone:+1555", "webchat:v1", "shop:42"});
}

TEST_CASE("two customers that turn out to be one merge, the older survives and the younger id aliases it",
          "[pipeline][identity]") {
    MemoryStore s;
    (void)apply(observe("r1", "c-old", {"whatsapp:1555", "phone:+1555"}), 10, s);
    (void)apply(observe("r2", "c-new", {"email:ana@example.com"}), 11, s);
    // A message showing both: the email customer folds into the WhatsApp one (created first).
    Outcome o = apply(observe("r3", "c-x", {"webchat:v9", "phone:+1555", "email:ana@example.com"}), 12, s);
    REQUIRE(o.ok);
    CHECK(o.customer == "c-old");
    CHECK(o.merges == std::vector<Merge>{{"c-new", "c-old"}});
    CHECK(s.customer_of("email:ana@example.com") == "c-old");
    CHECK(resolve(s, "c-new")->id == "c-old");
    auto alias = s.customer("c-new");
    REQUIRE(alias);
    CHECK(alias->merged_into == "c-old");
    CHECK(alias->identities.empty());
    auto survivor = s.customer("c-old");
    CHECK(survivor->aliases == std::vector<std::string>{"c-new"});
    CHECK(survivor->requests == std::vector<std::string>{"r1", "r2", "r3"});

    // Age is the log offset, not the id: "c-a" created later loses to "c-old".
    (void)apply(observe("r4", "c-a", {"line:u1"}), 13, s);
    Outcome m = apply(link("r5", "c-a", "whatsapp:1555"), 14, s);
    REQUIRE(m.ok);
    CHECK(m.customer == "c-old");
    CHECK(m.merges == std::vector<Merge>{{"c-a", "c-old"}});
    CHECK(resolve(s, "c-a")->id == "c-old");
    // A later merge of the survivor repoints the earlier aliases too (one hop).
    (void)apply(observe("r6", "c-first", {"telegram:b:1"}), 1, s);  // offset 1: older than everything
    Outcome m2 = apply(link("r7", "c-old", "telegram:b:1"), 15, s);
    REQUIRE(m2.ok);
    CHECK(m2.customer == "c-first");
    CHECK(s.customer("c-new")->merged_into == "c-first");
    CHECK(s.customer("c-a")->merged_into == "c-first");
    CHECK(resolve(s, "c-new")->id == "c-first");
    CHECK(resolve(s, "c-first")->aliases.size() == 3);
}

TEST_CASE("admin link and unlink", "[pipeline][identity]") {
    MemoryStore s;
    (void)apply(observe("r1", "c-a", {"whatsapp:1555"}), 0, s);
    Outcome l = apply(link("r2", "c-a", "email:ana@example.com"), 1, s);
    REQUIRE(l.ok);
    CHECK(l.linked == std::vector<std::string>{"email:ana@example.com"});
    CHECK(s.customer_of("email:ana@example.com") == "c-a");

    Outcome bad = apply(link("r3", "c-nobody", "email:x@example.com"), 2, s);
    CHECK_FALSE(bad.ok);
    CHECK(bad.error == "unknown customer c-nobody");
    CHECK_FALSE(s.customer_of("email:x@example.com"));

    Outcome u = apply(unlink("r4", "c-a", "email:ana@example.com"), 3, s);
    REQUIRE(u.ok);
    CHECK(u.unlinked == std::vector<std::string>{"email:ana@example.com"});
    CHECK_FALSE(s.customer_of("email:ana@example.com"));
    CHECK(resolve(s, "c-a")->identities == std::vector<std::string>{"whatsapp:1555"});

    Outcome not_theirs = apply(unlink("r5", "c-a", "email:ana@example.com"), 4, s);
    CHECK_FALSE(not_theirs.ok);
    CHECK(not_theirs.error == "email:ana@example.com is not linked to customer c-a");
    // The unlinked identity is free: a later message makes it someone new.
    Outcome fresh = apply(observe("r6", "c-b", {"email:ana@example.com"}), 5, s);
    CHECK(fresh.created);
    CHECK(s.customer_of("email:ana@example.com") == "c-b");
}

TEST_CASE("erasure removes the customer, its aliases and identities, and names the records to tombstone",
          "[pipeline][identity]") {
    MemoryStore s;
    (void)apply(observe("r1", "c-a", {"whatsapp:1555", "phone:+1555"}), 0, s);
    (void)apply(observe("r2", "c-b", {"email:ana@example.com"}), 1, s);
    (void)apply(link("r3", "c-b", "phone:+1555"), 2, s);  // merges c-b into c-a
    (void)apply(observe("r4", "c-z", {"line:other"}), 3, s);
    Outcome e = apply(erase("r5", "c-b"), 4, s);  // by the alias: the whole customer goes
    REQUIRE(e.ok);
    CHECK(e.customer == "c-a");
    CHECK(e.erased_customers == std::vector<std::string>{"c-b", "c-a"});
    CHECK(e.tombstone_requests == std::vector<std::string>{"r1", "r2", "r3"});  // r5 (the erase) stays
    CHECK_FALSE(s.customer_of("whatsapp:1555"));
    CHECK_FALSE(s.customer_of("email:ana@example.com"));
    CHECK_FALSE(resolve(s, "c-a"));
    CHECK_FALSE(resolve(s, "c-b"));
    CHECK(s.customer_of("line:other") == "c-z");  // nobody else is touched
    CHECK_FALSE(apply(erase("r6", "c-a"), 5, s).ok);
}

TEST_CASE("limits: a customer cannot collect more than the maximum of identities", "[pipeline][identity]") {
    MemoryStore s;
    std::vector<std::string> many;
    for (std::size_t i = 0; i < kMaxIdentitiesPerCustomer; ++i) many.push_back("app:" + std::to_string(i));
    REQUIRE(apply(observe("r1", "c-a", many), 0, s).ok);
    Outcome over = apply(link("r2", "c-a", "email:one@more.com"), 1, s);
    CHECK_FALSE(over.ok);
    CHECK_FALSE(s.customer_of("email:one@more.com"));
    Outcome over2 = apply(observe("r3", "c-b", {"email:one@more.com", "app:7"}), 2, s);
    CHECK_FALSE(over2.ok);
}

TEST_CASE("concurrent first contacts on two instances end as one customer on both", "[pipeline][identity]") {
    // Both instances see the customer's first message before either saw the other's request:
    // each proposes its own customer id. The log orders the two requests; applying it makes
    // the first proposal the customer on both instances.
    Log log;
    Instance a, b;
    a.catch_up(log);
    b.catch_up(log);
    REQUIRE(a.customer_of("whatsapp:1555").empty());
    REQUIRE(b.customer_of("whatsapp:1555").empty());
    log.append(observe("from-b", "c-b", {"whatsapp:1555", "phone:+1555"}));
    log.append(observe("from-a", "c-a", {"whatsapp:1555", "phone:+1555"}));
    a.catch_up(log);
    b.catch_up(log);
    CHECK(a.customer_of("whatsapp:1555") == "c-b");
    CHECK(b.customer_of("whatsapp:1555") == "c-b");
    CHECK(a.outcomes["from-a"].customer == "c-b");  // a learns the winner from its own request
    CHECK_FALSE(a.outcomes["from-a"].created);
    CHECK(a.store.customers() == b.store.customers());
    CHECK(a.store.identities() == b.store.identities());
}

TEST_CASE("every instance reaches the same state from the same log, also after an erasure and compaction",
          "[pipeline][identity]") {
    // Random traffic from three instances over a small identity space: first contacts,
    // cross-channel links, admin links, unlinks and erasures, in random order.
    std::mt19937 rng(20261125);
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
    const std::vector<std::string> kinds = {"whatsapp", "phone", "email", "webchat", "shop"};
    auto some_identity = [&] { return kinds[pick(5)] + ":" + std::to_string(pick(40)); };

    Log log;
    Instance writers[3];
    int n = 0;
    for (int step = 0; step < 600; ++step) {
        Instance& w = writers[pick(3)];
        w.catch_up(log);  // a writer's view may lag: it proposes from what it has applied
        const std::string rid = "r" + std::to_string(n++);
        const int kind = pick(10);
        if (kind < 6) {
            std::vector<std::string> ids{some_identity()};
            for (int k = pick(3); k > 0; --k) ids.push_back(some_identity());
            std::sort(ids.begin() + 1, ids.end());
            ids.erase(std::unique(ids.begin() + 1, ids.end()), ids.end());
            if (std::find(ids.begin() + 1, ids.end(), ids.front()) != ids.end()) ids.resize(1);
            log.append(observe(rid, "c" + rid, ids));
        } else if (kind < 8 && !w.store.customers().empty()) {
            auto it = std::next(w.store.customers().begin(), pick(static_cast<int>(w.store.customers().size())));
            log.append(kind == 6 ? link(rid, it->first, some_identity()) : unlink(rid, it->first, some_identity()));
        } else if (kind == 9 && !w.store.customers().empty() && pick(4) == 0) {
            auto it = std::next(w.store.customers().begin(), pick(static_cast<int>(w.store.customers().size())));
            Request e = erase(rid, it->first);
            log.append(e);
            // The instance that asked for the erasure writes the tombstones once it applied it.
            w.catch_up(log);
            for (const auto& req : w.outcomes[rid].tombstone_requests) log.tombstone(req);
        }
        std::int64_t slowest = log.next;
        for (auto& i : writers) slowest = std::min(slowest, i.applied);
        log.compact(slowest);
    }
    for (auto& w : writers) w.catch_up(log);
    log.compact(log.next);
    // The run exercised what it is about: merges, erasures, compaction.
    int merges = 0, erased = 0;
    for (const auto& [id, o] : writers[0].outcomes) {
        merges += static_cast<int>(o.merges.size());
        erased += static_cast<int>(o.erased_customers.size());
    }
    CHECK(merges > 5);
    CHECK(erased > 2);
    CHECK(log.records.size() + 20 < static_cast<std::size_t>(log.next));
    CHECK(writers[0].store.customers() == writers[1].store.customers());
    CHECK(writers[1].store.customers() == writers[2].store.customers());
    CHECK(writers[0].store.identities() == writers[2].store.identities());
    CHECK(writers[0].store.identities().size() > 20);

    // A new instance (or one that lost its disk) replays what compaction left of the log:
    // the same identity → customer mapping as everyone else.
    Instance fresh;
    fresh.catch_up(log);
    for (const auto& [ident, cust] : writers[0].store.identities()) {
        INFO(ident);
        CHECK(fresh.customer_of(ident) == writers[0].customer_of(ident));
    }
    CHECK(fresh.store.identities().size() == writers[0].store.identities().size());

    // Every identity maps to a live survivor that lists it.
    for (const auto& [ident, cust] : writers[0].store.identities()) {
        auto c = resolve(writers[0].store, cust);
        REQUIRE(c);
        CHECK(std::find(c->identities.begin(), c->identities.end(), ident) != c->identities.end());
    }
}

TEST_CASE("attributes: set and removed through the log, kept by the survivor of a merge, checked", "[pipeline][identity]") {
    Log log;
    Instance a;
    auto attrs = [](std::string id, std::string customer, std::map<std::string, std::optional<std::string>> values) {
        Request r{Op::attributes, std::move(id), std::move(customer), {}, 5000, "admin", std::move(values)};
        return r;
    };
    log.append(observe("r1", "c-old", {"whatsapp:1", "phone:+1"}));
    log.append(observe("r2", "c-young", {"email:a@example.com"}));
    log.append(attrs("r3", "c-old", {{"tier", "gold"}, {"lifetime_value", "1200"}}));
    log.append(attrs("r4", "c-young", {{"tier", "vip"}, {"locale", "es-ES"}}));
    log.append(attrs("r5", "c-old", {{"lifetime_value", std::nullopt}}));
    log.append(attrs("r6", "c-nobody", {{"tier", "vip"}}));
    a.catch_up(log);
    auto old = resolve(a.store, "c-old");
    REQUIRE(old);
    CHECK(old->attributes == std::map<std::string, std::string>{{"tier", "gold"}});
    CHECK_FALSE(a.outcomes["r6"].ok);

    // The two turn out to be one: the survivor keeps its own tier and gains the alias's locale.
    log.append(link("r7", "c-old", "email:a@example.com"));
    a.catch_up(log);
    auto merged = resolve(a.store, "c-young");
    REQUIRE(merged);
    CHECK(merged->id == "c-old");
    CHECK(merged->attributes == std::map<std::string, std::string>{{"tier", "gold"}, {"locale", "es-ES"}});
    // Another instance applying the same log agrees, and the customer record round-trips.
    Instance b;
    b.catch_up(log);
    CHECK(resolve(b.store, "c-old") == merged);
    CHECK(decode_customer(encode(*merged)) == merged);

    // Attribute requests are the erasure's to tombstone: they hold personal data.
    log.append(erase("r8", "c-old"));
    a.catch_up(log);
    const auto& erased = a.outcomes["r8"].tombstone_requests;
    CHECK(std::find(erased.begin(), erased.end(), "r3") != erased.end());
    CHECK(std::find(erased.begin(), erased.end(), "r4") != erased.end());

    // Decoding refuses what the log must never hold.
    auto text = [&](std::map<std::string, std::optional<std::string>> values) {
        return encode(attrs("r9", "c-1", std::move(values)));
    };
    CHECK(decode_request(text({{"tier", "vip"}})).ok());
    CHECK_FALSE(decode_request(text({{"Tier", "vip"}})).ok());
    CHECK_FALSE(decode_request(text({{"tier", std::string(300, 'x')}})).ok());
    CHECK_FALSE(decode_request(text({})).ok());
    std::map<std::string, std::optional<std::string>> many;
    for (int i = 0; i < 40; ++i) many["a" + std::to_string(i)] = "x";
    CHECK_FALSE(decode_request(text(many)).ok());
    CHECK_FALSE(decode_request(R"({"v":1,"op":"link","id":"r","customer":"c","identities":["email:a@b.co"],"attributes":{"tier":"x"}})").ok());
}
