// The pipeline inside omnibusd, end to end over Kafka: envelopes put on omnibus.inbound the
// way the connectors write them come out on the outboxes with their customer,
// conversation and context; one customer across WhatsApp, web chat and email; the admin API
// shows the one history and erases it. Then two omnibusd processes in one group on a shared
// cluster: one is killed with SIGKILL mid-stream and the other finishes the work with
// complete identities and histories, nothing lost (read back with kcat). And two processes
// splitting the history: either one's admin API answers for every customer, forwarding to the
// holder once. The instances on a shared (not embedded) cluster route in Kafka transactions
// (pipeline.transactions: auto), the SIGKILL included.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <signal.h>

#include <map>
#include <set>
#include <sstream>

#include "daemon_fixture.h"
#include "support/cluster_topics.h"
#include "envelope/envelope.h"
#include "kafka/embedded_cluster.h"
#include "kafka/producer.h"
#include "kafka/topics.h"
#include "metrics/metrics.h"

using namespace omnibus;
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

envelope::Envelope inbound(std::string channel_type, std::string channel_name, std::string sender, std::string text) {
    envelope::Envelope e;
    e.id = envelope::new_id();
    e.channel = {std::move(channel_type), std::move(channel_name)};
    e.direction = envelope::Direction::inbound;
    e.sender.id = std::move(sender);
    e.content.type = envelope::ContentType::text;
    e.content.text = std::move(text);
    e.received_at = envelope::now_ms();
    e.platform = envelope::Platform{"pm-" + e.id, std::nullopt, std::nullopt};
    return e;
}

// Produces envelopes to <prefix>inbound keyed by the channel identity, as a connector does.
class Inbound {
public:
    explicit Inbound(const std::string& bootstrap) : producer_(settings(bootstrap), reg_) {}
    void send(const envelope::Envelope& e) {
        REQUIRE(envelope::validate(e).ok());
        kafka::Record r = envelope::encode(e, e.sender.id);
        r.topic = "omnibus.inbound";
        producer_.produce(std::move(r), [this](const kafka::DeliveryResult& d) {
            if (!d.ok()) failed_ = true;
        });
    }
    bool flush() { return producer_.flush(10s) == 0 && !failed_; }

private:
    static kafka::KafkaSettings settings(const std::string& bootstrap) {
        kafka::KafkaSettings s;
        s.brokers = bootstrap;
        s.message_timeout = 10s;
        return s;
    }
    metrics::Registry reg_;
    kafka::Producer producer_;
    std::atomic<bool> failed_{false};
};

// One routed message as kcat printed it: the body's fields the tests look at.
struct Routed {
    std::string id, customer, conversation, channel, text;
    std::vector<std::string> context;  // ids
    std::vector<std::string> context_channels;
};

// Everything on the topic, read by kcat (an independent client), one JSON body per line.
std::vector<Routed> read_routed(const std::string& bootstrap, const std::string& topic) {
    std::string out = run_capture("timeout 20 kcat -C -q -e -b " + bootstrap + " -t " + topic +
                                  " -o beginning -f '%s\\n' 2>/dev/null");
    std::vector<Routed> all;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        rapidjson::Document d;
        d.Parse(line.c_str());
        if (d.HasParseError() || !d.IsObject()) continue;
        Routed r;
        r.id = d["id"].GetString();
        if (d.HasMember("customer_id")) r.customer = d["customer_id"].GetString();
        if (d.HasMember("conversation_id")) r.conversation = d["conversation_id"].GetString();
        r.channel = d["channel"]["name"].GetString();
        if (d["content"].HasMember("text")) r.text = d["content"]["text"].GetString();
        if (d.HasMember("context"))
            for (const auto& c : d["context"].GetArray()) {
                r.context.emplace_back(c["id"].GetString());
                r.context_channels.emplace_back(c.HasMember("channel") ? c["channel"].GetString() : "");
            }
        all.push_back(std::move(r));
    }
    return all;
}

// Both outboxes: routing sends each message to one of them (the messages here are classified
// and routed by the built-in rules; which outbox is not what these tests are about).
std::vector<Routed> read_outboxes(const std::string& bootstrap) {
    auto all = read_routed(bootstrap, "omnibus.outbox.ai");
    for (auto& r : read_routed(bootstrap, "omnibus.outbox.human")) all.push_back(std::move(r));
    return all;
}

// Reads the outboxes into `routed` until they hold `want` distinct messages or `timeout` passes.
bool wait_routed(const std::string& bootstrap, std::size_t want, std::vector<Routed>& routed,
                 std::chrono::milliseconds timeout, std::chrono::milliseconds interval) {
    return wait_until(
        [&] {
            routed = read_outboxes(bootstrap);
            std::set<std::string> distinct;
            for (const auto& r : routed) distinct.insert(r.id);
            return distinct.size() == want;
        },
        timeout, interval);
}

const Routed* by_id(const std::vector<Routed>& all, const std::string& id) {
    for (const auto& r : all)
        if (r.id == id) return &r;
    return nullptr;
}

std::string bootstrap_of(Daemon& d) {
    auto st = d.get("/v1/status");
    REQUIRE(st);
    auto doc = parse_json(st->body);
    return doc["kafka"]["bootstrap_servers"].GetString();
}

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

}  // namespace

TEST_CASE("one customer on WhatsApp, web chat and email has one history of three channels",
          "[daemon][pipeline][integration]") {
    Daemon d(kEmbeddedConfig);
    REQUIRE(d.admin_port() > 0);
    REQUIRE(d.wait_ready(15s));
    INFO(d.output());
    const std::string bootstrap = bootstrap_of(d);
    Inbound in(bootstrap);
    {
        // pipeline.transactions: auto is off on the embedded cluster (its mock does not implement them).
        auto st = d.get("/v1/status");
        REQUIRE(st);
        auto doc = parse_json(st->body);
        REQUIRE(doc.HasMember("pipeline"));
        CHECK(doc["pipeline"]["started"].GetBool());
        CHECK_FALSE(doc["pipeline"]["transactions"].GetBool());
        CHECK_FALSE(doc["pipeline"]["failed"].GetBool());
    }

    // WhatsApp shows the number; the web chat visitor is logged in at the shop, whose backend
    // signed a claim with the same number (written nationally) and an email address; the email
    // then comes from that address.
    auto wa = inbound("whatsapp", "wa-br", "whatsapp:5511987654321", "Oi, cadê meu pedido 1234?");
    wa.sender.identities = {"phone:+5511987654321"};
    wa.sender.display_name = "Ana";
    auto chat = inbound("webchat", "site", "webchat:v-42", "I asked on WhatsApp already");
    chat.sender.verified_claims = envelope::VerifiedClaims{"SHOP-77", "Ana.Silva@Example.COM", "+55 11 98765-4321"};
    auto mail = inbound("email", "support-mail", "email:Ana.Silva@example.com", "Here is the invoice");
    mail.content.subject = "Order 1234";

    std::vector<Routed> routed;
    for (const auto* e : {&wa, &chat, &mail}) {
        in.send(*e);
        REQUIRE(in.flush());
        // One at a time, so each sees the one before it in its context.
        REQUIRE(wait_until(
            [&] {
                routed = read_outboxes(bootstrap);
                return by_id(routed, e->id) != nullptr;
            },
            20s, 50ms));
    }
    const Routed* r1 = by_id(routed, wa.id);
    const Routed* r2 = by_id(routed, chat.id);
    const Routed* r3 = by_id(routed, mail.id);
    REQUIRE((r1 && r2 && r3));
    CHECK_FALSE(r1->customer.empty());
    CHECK(r2->customer == r1->customer);
    CHECK(r3->customer == r1->customer);
    CHECK(r2->conversation == r1->conversation);
    CHECK(r3->conversation == r1->conversation);
    CHECK(r3->context == std::vector<std::string>{wa.id, chat.id});
    CHECK(r3->context_channels == std::vector<std::string>{"wa-br", "site"});
    const std::string customer = r1->customer;

    // Every identity answers the same customer.
    for (const std::string identity : {"whatsapp:5511987654321", "phone:+5511987654321", "webchat:v-42",
                                       "shop:SHOP-77", "email:Ana.Silva@example.com"}) {
        auto r = d.get("/v1/identities/" + url_encode(identity));
        REQUIRE(r);
        INFO(identity << " → " << r->body);
        CHECK(r->status == 200);
        CHECK(parse_json(r->body)["customer_id"].GetString() == customer);
    }
    auto profile = d.get("/v1/customers/" + customer);
    REQUIRE(profile);
    REQUIRE(profile->status == 200);
    auto p = parse_json(profile->body);
    CHECK(p["history"]["held_here"].GetBool());
    REQUIRE(p["conversations"].Size() == 1);
    CHECK(p["conversations"][0]["messages"].GetInt() == 3);
    CHECK(p["conversations"][0]["channels"].Size() == 3);

    auto msgs = d.get("/v1/customers/" + customer + "/messages");
    REQUIRE(msgs);
    REQUIRE(msgs->status == 200);
    auto m = parse_json(msgs->body);
    REQUIRE(m["messages"].Size() == 3);
    CHECK(std::string(m["messages"][0]["id"].GetString()) == mail.id);  // newest first
    CHECK(std::string(m["messages"][0]["content"]["subject"].GetString()) == "Order 1234");
    CHECK(std::string(m["messages"][2]["channel"]["name"].GetString()) == "wa-br");
    auto only_chat = d.get("/v1/customers/" + customer + "/messages?channel=site");
    REQUIRE(only_chat);
    CHECK(parse_json(only_chat->body)["messages"].Size() == 1);
    auto paged = d.get("/v1/customers/" + customer + "/messages?limit=2");
    REQUIRE(paged);
    auto pg = parse_json(paged->body);
    CHECK(pg["messages"].Size() == 2);
    REQUIRE(pg.HasMember("next"));
    auto rest = d.get("/v1/customers/" + customer + "/messages?limit=2&before=" + url_encode(pg["next"].GetString()));
    REQUIRE(rest);
    CHECK(parse_json(rest->body)["messages"].Size() == 1);
    auto bad = d.get("/v1/customers/" + customer + "/messages?limit=0");
    REQUIRE(bad);
    CHECK(bad->status == 400);

    // Another customer, then an agent finds out it is Ana too: linking its address merges it
    // into Ana (the older customer), and its history joins hers without waiting for a message.
    auto bob = inbound("email", "support-mail", "email:ana.alt@example.org", "Second address, same person");
    in.send(bob);
    REQUIRE(in.flush());
    REQUIRE(wait_until([&] { return by_id(read_outboxes(bootstrap), bob.id) != nullptr; }, 20s, 50ms));
    const std::string other = by_id(read_outboxes(bootstrap), bob.id)->customer;
    CHECK(other != customer);
    httplib::Client c("127.0.0.1", d.admin_port());
    c.set_read_timeout(10s);
    auto linked = c.Post(("/v1/customers/" + customer + "/identities").c_str(),
                         R"({"identity":"email:ana.alt@example.org"})", "application/json");
    REQUIRE(linked);
    INFO(linked->body);
    REQUIRE(linked->status == 200);
    auto lk = parse_json(linked->body);
    REQUIRE(lk["merged"].Size() == 1);
    CHECK(std::string(lk["merged"][0]["from"].GetString()) == other);
    REQUIRE(wait_until(
        [&] {
            auto r = d.get("/v1/customers/" + customer + "/messages");
            return r && r->status == 200 && parse_json(r->body)["messages"].Size() == 4;
        },
        20s, 50ms));
    auto merged_view = d.get("/v1/customers/" + other + "/messages");  // the alias answers the survivor
    REQUIRE(merged_view);
    CHECK(std::string(parse_json(merged_view->body)["customer_id"].GetString()) == customer);

    // Erasure: afterwards no API says anything of that customer.
    auto erased = c.Delete(("/v1/customers/" + customer).c_str());
    REQUIRE(erased);
    CHECK(erased->status == 200);
    for (const std::string& path : {"/v1/customers/" + customer, "/v1/customers/" + customer + "/messages",
                                   "/v1/identities/" + url_encode("phone:+5511987654321")}) {
        auto r = d.get(path);
        REQUIRE(r);
        CHECK(r->status == 404);
    }
    // The history itself is gone from the store (and tombstoned on its changelog): four
    // entries and the customer's routing state.
    REQUIRE(wait_until(
        [&] {
            auto metrics = d.get("/metrics");
            return metrics && metrics->body.find("omnibus_history_erased_total 5") != std::string::npos;
        },
        10s, 50ms));
}

TEST_CASE("two instances share the pipeline, one killed with SIGKILL mid-stream, the other finishes with complete "
          "histories and nothing lost",
          "[daemon][pipeline][integration]") {
    // The cluster lives in the test, so it outlives the instance that is killed.
    kafka::EmbeddedCluster cluster(1);
    create_omnibus_topics(cluster, 4);
    const std::string bootstrap = cluster.bootstrap_servers();
    const std::string config = R"(
state_dir: /tmp/omnibus-test-state
admin:
  listen: 127.0.0.1:0
edge:
  listen: 127.0.0.1:0
kafka:
  brokers: )" + bootstrap + R"(
  partitions: 4
  replication_factor: 1
pipeline:
  history:
    context_messages: 100
channels: []
)";
    auto a = std::make_unique<Daemon>(config);
    Daemon b(config);
    REQUIRE(a->admin_port() > 0);
    REQUIRE(b.admin_port() > 0);
    REQUIRE(a->wait_ready(30s));
    REQUIRE(b.wait_ready(30s));
    // On a cluster that is not embedded, pipeline.transactions: auto turns them on (this mock
    // answers them): both instances route in Kafka transactions.
    for (Daemon* d : {a.get(), &b}) {
        auto st = d->get("/v1/status");
        REQUIRE(st);
        auto doc = parse_json(st->body);
        REQUIRE(doc.HasMember("pipeline"));
        CHECK(doc["pipeline"]["transactions"].GetBool());
    }

    // 12 customers, 20 messages each, interleaved; the first instance dies after a third.
    constexpr int kCustomers = 12, kPerCustomer = 20;
    Inbound in(bootstrap);
    std::vector<std::vector<std::string>> ids(kCustomers);
    const envelope::Timestamp t0 = envelope::now_ms();
    int sent = 0;
    for (int round = 0; round < kPerCustomer; ++round) {
        for (int c = 0; c < kCustomers; ++c) {
            auto e = inbound("whatsapp", "wa", "whatsapp:4915100000" + std::to_string(100 + c),
                             "message " + std::to_string(round));
            // Distinct, increasing times per customer: history is in time order.
            e.received_at = t0 + std::chrono::milliseconds(round * 100 + c);
            e.sender.identities = {"phone:+4915100000" + std::to_string(100 + c)};
            ids[static_cast<std::size_t>(c)].push_back(e.id);
            in.send(e);
            ++sent;
        }
        REQUIRE(in.flush());
        if (round == kPerCustomer / 3) {
            // Both are busy by now: kill one without any chance to commit or checkpoint.
            const bool busy = wait_until([&] { return read_outboxes(bootstrap).size() >= 60; }, 30s, 50ms);
            if (!busy) {  // say where it stalled: what was routed and what both instances logged
                const auto tail = [](const std::string& log) {
                    return log.substr(log.size() > 5000 ? log.size() - 5000 : 0);
                };
                INFO("routed so far: " << read_outboxes(bootstrap).size() << " of " << sent << " sent");
                INFO("the end of a's log:\n" << tail(a->output()));
                INFO("the end of b's log:\n" << tail(b.output()));
                REQUIRE(busy);
            }
            a->process().signal(SIGKILL);
            REQUIRE(a->process().wait_exit(5s));
        }
    }
    INFO(b.output());

    // The survivor takes the dead instance's partitions over (after the group's session
    // timeout) and routes everything.
    std::vector<Routed> routed;
    REQUIRE(wait_routed(bootstrap, static_cast<std::size_t>(sent), routed, 90s, 200ms));

    std::map<std::string, int> copies;
    for (const auto& r : routed) ++copies[r.id];
    int duplicates = 0;
    for (const auto& [id, n] : copies) duplicates += n - 1;
    // None lost; a message routed twice can only be one whose emit was acknowledged while
    // its changelog record was not when the instance died: the same id again, never a new one.
    CHECK(copies.size() == static_cast<std::size_t>(sent));
    WARN("messages routed again after the SIGKILL: " << duplicates);
    CHECK(duplicates <= 4);

    for (int c = 0; c < kCustomers; ++c) {
        const auto& mine = ids[static_cast<std::size_t>(c)];
        const Routed* last = by_id(routed, mine.back());
        REQUIRE(last);
        // One customer per sender, on both instances alike.
        std::set<std::string> customers;
        for (const auto& id : mine) customers.insert(by_id(routed, id)->customer);
        CHECK(customers.size() == 1);
        // The last message carries the whole history, also what the dead instance had written.
        CHECK(last->context == std::vector<std::string>(mine.begin(), mine.end() - 1));
    }
    a.reset();
}

TEST_CASE("two instances share the history and either admin API answers for every customer, forwarding once to the "
          "holder",
          "[daemon][pipeline][integration]") {
    kafka::EmbeddedCluster cluster(1);
    create_omnibus_topics(cluster, 4);
    const std::string bootstrap = cluster.bootstrap_servers();
    // With a token: the forwarded request must carry the caller's, and no log line may show it.
    const std::string token = "tok-3f9a2c71e5d84b06";
    const std::string config = R"(
state_dir: /tmp/omnibus-test-state
admin:
  listen: 127.0.0.1:0
  token: )" + token + R"(
edge:
  listen: 127.0.0.1:0
kafka:
  brokers: )" + bootstrap + R"(
  partitions: 4
  replication_factor: 1
channels: []
)";
    const httplib::Headers auth{{"Authorization", "Bearer " + token}};
    Daemon a(config);
    Daemon b(config);
    REQUIRE(a.admin_port() > 0);
    REQUIRE(b.admin_port() > 0);
    for (Daemon* d : {&a, &b}) {
        INFO(d->output());
        REQUIRE(wait_until(
            [&] {
                auto r = d->get("/readyz", auth);
                return r && r->status == 200;
            },
            30s, 20ms));
    }

    constexpr int kCustomers = 16, kPerCustomer = 3;
    Inbound in(bootstrap);
    std::vector<std::vector<std::string>> ids(kCustomers);
    const envelope::Timestamp t0 = envelope::now_ms();
    for (int round = 0; round < kPerCustomer; ++round)
        for (int c = 0; c < kCustomers; ++c) {
            auto e = inbound("whatsapp", "wa", "whatsapp:3161200" + std::to_string(1000 + c),
                             "question " + std::to_string(round));
            e.received_at = t0 + std::chrono::milliseconds(round * 100 + c);
            ids[static_cast<std::size_t>(c)].push_back(e.id);
            in.send(e);
        }
    REQUIRE(in.flush());
    std::vector<Routed> routed;
    REQUIRE(wait_routed(bootstrap, static_cast<std::size_t>(kCustomers * kPerCustomer), routed, 60s, 100ms));
    std::vector<std::string> customers;
    for (const auto& mine : ids) {
        const Routed* r = by_id(routed, mine.front());
        REQUIRE(r);
        customers.push_back(r->customer);
    }

    // Every customer's history on both admin ports: 200 with the three messages, newest first,
    // from the one instance that holds it (the other forwards). Rebalancing may still settle
    // right after the messages went through: hence the deadline.
    auto history_everywhere = [&](std::string& why) {
        for (int c = 0; c < kCustomers; ++c)
            for (Daemon* d : {&a, &b}) {
                auto r = d->get("/v1/customers/" + customers[static_cast<std::size_t>(c)] + "/messages", auth);
                if (!r || r->status != 200) {
                    why = "customer " + std::to_string(c) + " on " + (d == &a ? "a" : "b") + ": " +
                          (r ? std::to_string(r->status) + " " + r->body : std::string("no answer"));
                    return false;
                }
                rapidjson::Document m;
                m.Parse(r->body.c_str());
                const auto& mine = ids[static_cast<std::size_t>(c)];
                if (m.HasParseError() || !m.HasMember("messages") || m["messages"].Size() != mine.size() ||
                    m["messages"][0]["id"].GetString() != mine.back()) {
                    why = "customer " + std::to_string(c) + ": " + r->body;
                    return false;
                }
            }
        return true;
    };
    std::string why;
    const bool settled = wait_until([&] { return history_everywhere(why); }, 30s, 100ms);
    INFO(why);
    REQUIRE(settled);

    // Both instances hold some of the customers: each answered for the other's too.
    std::vector<Daemon*> holder_of(kCustomers, nullptr);
    int held_by_a = 0, held_by_b = 0;
    for (int c = 0; c < kCustomers; ++c) {
        const std::string& customer = customers[static_cast<std::size_t>(c)];
        auto pa = a.get("/v1/customers/" + customer, auth);
        auto pb = b.get("/v1/customers/" + customer, auth);
        REQUIRE((pa && pb));
        REQUIRE((pa->status == 200 && pb->status == 200));
        auto ja = parse_json(pa->body);
        auto jb = parse_json(pb->body);
        INFO(pa->body << "\n" << pb->body);
        const bool on_a = ja["history"]["held_here"].GetBool(), on_b = jb["history"]["held_here"].GetBool();
        REQUIRE(on_a != on_b);
        holder_of[static_cast<std::size_t>(c)] = on_a ? &a : &b;
        (on_a ? held_by_a : held_by_b)++;
        // The profile has the conversations on both: here, or fetched from the holder.
        for (auto* j : {&ja, &jb}) {
            REQUIRE(j->HasMember("conversations"));
            REQUIRE((*j)["conversations"].Size() == 1);
            CHECK((*j)["conversations"][0]["messages"].GetInt() == kPerCustomer);
        }
        CHECK(std::string((on_a ? jb : ja)["history"]["source"].GetString()) == "holder");
        CHECK(std::string((on_a ? ja : jb)["history"]["source"].GetString()) == "here");
    }
    REQUIRE(held_by_a > 0);
    REQUIRE(held_by_b > 0);

    // A customer held by b, asked on a: the query goes along (a page of 2, then the rest by the
    // cursor, which needs URL-encoding), and a request already forwarded is not forwarded again.
    int on_b = 0;
    while (holder_of[static_cast<std::size_t>(on_b)] != &b) ++on_b;
    const std::string customer = customers[static_cast<std::size_t>(on_b)];
    auto page = a.get("/v1/customers/" + customer + "/messages?limit=2", auth);
    REQUIRE(page);
    REQUIRE(page->status == 200);
    auto pg = parse_json(page->body);
    CHECK(pg["messages"].Size() == 2);
    REQUIRE(pg.HasMember("next"));
    auto rest = a.get("/v1/customers/" + customer + "/messages?limit=2&before=" + url_encode(pg["next"].GetString()), auth);
    REQUIRE(rest);
    REQUIRE(rest->status == 200);
    CHECK(parse_json(rest->body)["messages"].Size() == 1);

    httplib::Headers forwarded = auth;
    forwarded.emplace("X-Omnibus-Forwarded", "1");
    auto once = a.get("/v1/customers/" + customer + "/messages", forwarded);
    REQUIRE(once);
    CHECK(once->status == 421);
    auto o = parse_json(once->body);
    CHECK(std::string(o["reason"].GetString()) == "forwarded");
    CHECK(o["partition"].IsInt());
    // The holder itself answers a forwarded request from what it holds.
    auto direct = b.get("/v1/customers/" + customer + "/messages", forwarded);
    REQUIRE(direct);
    CHECK(direct->status == 200);
    // Without the token, nothing is forwarded: 401 here.
    auto anonymous = a.get("/v1/customers/" + customer + "/messages");
    REQUIRE(anonymous);
    CHECK(anonymous->status == 401);

    // A clean stop of b writes its tombstone on the instances topic (kcat: key, value length -1).
    const std::string b_instance = ":" + std::to_string(b.process().pid());
    b.process().signal(SIGTERM);
    REQUIRE(b.process().wait_exit(10s));
    const std::string b_log = b.process().output();
    INFO("the end of b's log:\n" << b_log.substr(b_log.size() > 6000 ? b_log.size() - 6000 : 0));
    REQUIRE(wait_until(
        [&] {
            std::string out = run_capture("timeout 10 kcat -C -q -e -b " + bootstrap +
                                          " -t omnibus.instances -o beginning -f '%k %S\\n' 2>/dev/null");
            return out.find(b_instance + " -1\n") != std::string::npos;
        },
        10s, 100ms));

    // Until a has taken b's partitions over, a customer of b's answers 421 with why (nobody
    // known to hold it, or the holder gone), never an error or a hang; then a answers for all.
    std::set<std::string> reasons;
    const bool took_over = wait_until(
        [&] {
            for (const auto& c : customers) {
                auto r = a.get("/v1/customers/" + c + "/messages", auth);
                REQUIRE(r);
                if (r->status == 200) continue;
                INFO(r->body);
                REQUIRE(r->status == 421);
                reasons.insert(parse_json(r->body)["reason"].GetString());
                return false;
            }
            return true;
        },
        30s, 50ms);
    INFO(a.output());
    CHECK(took_over);
    for (const auto& r : reasons) CHECK((r == "holder_unknown" || r == "holder_unavailable"));

    for (Daemon* d : {&a, &b}) CHECK(d->output().find(token) == std::string::npos);
}
