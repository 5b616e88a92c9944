// The WhatsApp channel's inbound I/O shell (see whatsapp_connector.h).
#include "connectors/whatsapp/whatsapp_connector.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config/secret.h"
#include "connectors/meta/webhook_signature.h"
#include "connectors/whatsapp/dedup_store.h"
#include "connectors/whatsapp/delivery_status.h"
#include "connectors/whatsapp/whatsapp_codec.h"
#include "connectors/whatsapp/whatsapp_outbound.h"
#include "connectors/whatsapp/whatsapp_sender.h"
#include "connectors/whatsapp/whatsapp_spec.h"
#include "edge/edge_server.h"
#include "http/client.h"
#include "envelope/envelope.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "log/log.h"
#include "metrics/metrics.h"

namespace omnibus::connectors::whatsapp {
namespace {

using namespace std::chrono_literals;

const log::Logger logger{"whatsapp"};

// Records produced but not yet settled, all channels together, beyond which a
// request is refused with 503 at once instead of queueing behind a stalled Kafka
// (librdkafka's own queue holds 100,000 by default).
constexpr std::size_t kMaxInFlight = 50'000;
// While the producer reports every broker down, one request per interval still
// goes through, to notice that Kafka is back (the flag clears on the next ack).
constexpr std::chrono::milliseconds kProbeInterval = 1s;
// stop(): how long requests in flight may take to be settled before the dedup
// store closes (ids settled later are not persisted, see dedup_store.h).
constexpr std::chrono::milliseconds kDrainTimeout = 3s;

// A customer's window expiry is moved forward in steps of at least this: it
// may then close up to a minute early, never late.
constexpr std::chrono::milliseconds kWindowResolution = 1min;

constexpr std::size_t kErrorCodes = static_cast<std::size_t>(envelope::ErrorCode::duplicate_key) + 1;

enum class Kind : unsigned char { message, status, update };

std::int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

edge::Response unavailable(std::string_view why) {
    edge::Response r = edge::Response::error(503, why);
    r.headers.push_back({"Retry-After", "5"});
    return r;
}

std::string status_dedup_id(const DeliveryStatus& s) {
    std::string id = "s\x1f" + s.message_id + "\x1f" + s.status + "\x1f";
    if (s.timestamp) id += std::to_string(s.timestamp->time_since_epoch().count());
    return id;
}

}  // namespace

struct WhatsAppConnector::Core : std::enable_shared_from_this<WhatsAppConnector::Core> {
    explicit Core(const ConnectorContext& ctx);

    void handle(edge::Request request, edge::Responder responder);
    void handshake(const edge::Request& request, const edge::Responder& responder) const;
    bool kafka_can_take();
    void reject(std::string_view reason) const;
    void reject(envelope::ErrorCode code) const { rejected_by_code[static_cast<std::size_t>(code)]->inc(); }
    void kafka_result(bool ok);
    void batch_started();
    void batch_finished();

    const std::string name;
    kafka::Producer& producer;
    edge::EdgeServer& edge;
    const std::string inbound_topic;
    const std::string events_topic;
    const std::string deadletter_topic;
    const Secret verify_token;
    const meta::WebhookSigner signer;
    const WebhookCodec codec;
    const std::size_t max_body;
    const double webhook_rate_limit;
    DedupStore dedup;  // also each customer's service-window expiry (window_key)

    metrics::Counter* messages_in;
    metrics::Counter* statuses_in;
    metrics::Counter* updates_in;
    metrics::Counter* duplicates;
    metrics::Counter* kafka_failures;
    metrics::Counter* windows_forgotten;
    metrics::Counter* rejected_signature_missing;
    metrics::Counter* rejected_signature_malformed;
    metrics::Counter* rejected_signature_mismatch;
    metrics::Counter* rejected_body_too_large;
    std::array<metrics::Counter*, kErrorCodes> rejected_by_code{};

    std::atomic<bool> stopping{false};
    std::atomic<std::int64_t> next_probe_ms{0};  // steady ms; 0: brokers not reported down
    std::atomic<bool> kafka_trouble{false};  // for one log line per outage, not one per record

    std::mutex drain_mu;
    std::condition_variable drained;
    std::size_t active_batches = 0;  // guarded by drain_mu

    // Outbound: replies from the delivery topic, through the Graph API.
    std::unique_ptr<http::Client> http;
    std::unique_ptr<Sender> sender;
};

namespace {

// One POST being produced: answered when its own records are settled and the
// ids it found in flight elsewhere are settled too. Owned by its delivery
// callbacks (and by the dedup store's waiters while it waits on others).
struct Batch {
    Batch(std::shared_ptr<WhatsAppConnector::Core> c, edge::Responder r) : core(std::move(c)), responder(std::move(r)) {
        core->batch_started();
    }
    ~Batch() { core->batch_finished(); }
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    // Set up on the handler thread before the first produce().
    std::shared_ptr<WhatsAppConnector::Core> core;
    edge::Responder responder;
    std::vector<DedupKey> claimed;         // ids this request produces
    std::vector<Kind> claimed_kind;
    std::vector<unsigned char> claimed_ok;  // written by delivery callbacks (poll thread)
    // Messages that open the sender's service window: key and expiry (ms), by claim index.
    std::vector<std::pair<std::size_t, std::pair<DedupKey, std::int64_t>>> windows;
    std::size_t duplicates = 0;
    // Own records + 1 for the handler while it is still producing.
    std::atomic<int> own_left{1};
    // 1 for the own records + one per id in flight elsewhere.
    std::atomic<int> outstanding{1};
    std::atomic<bool> failed{false};

    void delivered(std::ptrdiff_t claim, const kafka::DeliveryResult& r) {
        core->kafka_result(r.ok());
        if (!r.ok()) {
            failed.store(true, std::memory_order_relaxed);
            core->kafka_failures->inc();
        } else if (claim >= 0) {
            const auto i = static_cast<std::size_t>(claim);
            claimed_ok[i] = 1;
            (claimed_kind[i] == Kind::message  ? core->messages_in
             : claimed_kind[i] == Kind::status ? core->statuses_in
                                               : core->updates_in)
                ->inc();
        }
        own_done();
    }

    void own_done() {
        if (own_left.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        // Every own record is settled: accepted ids enter the window, failed ones
        // are forgotten so Meta's retry produces them.
        core->dedup.settle(claimed, claimed_ok);
        for (const auto& [claim, window] : windows)
            if (claimed_ok[claim]) core->dedup.remember(window.first, window.second, kWindowResolution.count());
        finish_one();
    }

    void waited(bool accepted) {
        if (!accepted) failed.store(true, std::memory_order_relaxed);
        finish_one();
    }

    void finish_one() {
        if (outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        if (failed.load(std::memory_order_relaxed)) {
            responder.respond(unavailable("kafka did not acknowledge every event; retry"));
            return;
        }
        responder.respond(200, "{\"accepted\":" + std::to_string(claimed.size()) +
                                   ",\"duplicates\":" + std::to_string(duplicates) + "}");
    }
};

}  // namespace

WhatsAppConnector::Core::Core(const ConnectorContext& ctx)
    : name(ctx.block.name()),
      producer(ctx.producer),
      edge(ctx.edge),
      inbound_topic(ctx.kafka.topic_prefix + "inbound"),
      events_topic(ctx.kafka.topic_prefix + "events"),
      deadletter_topic(ctx.kafka.topic_prefix + "deadletter"),
      verify_token(ctx.block.secret("verify_token")),
      signer(ctx.block.secret("app_secret").reveal()),
      codec(CodecOptions{name, ctx.block.has("default_region") ? ctx.block.string("default_region") : std::string(),
                         static_cast<std::size_t>(ctx.block.size("max_webhook_body"))}),
      max_body(static_cast<std::size_t>(ctx.block.size("max_webhook_body"))),
      webhook_rate_limit(static_cast<double>(ctx.block.integer("webhook_rate_limit"))),
      dedup([&] {
          if (ctx.state_dir.empty()) throw std::invalid_argument("channel " + name + ": no state directory");
          DedupStore::Options o;
          o.path = (std::filesystem::path(ctx.state_dir) / "channels" / name / "dedup").string();
          o.window = ctx.block.duration("dedup_window");
          return o;
      }()) {
    metrics::Registry& m = ctx.metrics;
    const metrics::Labels channel{{"channel", name}};
    messages_in = &m.counter("omnibus_channel_messages_in_total",
                             "Inbound messages acknowledged by Kafka (duplicates not counted)", channel);
    statuses_in = &m.counter("omnibus_channel_statuses_in_total",
                             "Delivery statuses acknowledged by Kafka (duplicates not counted)", channel);
    updates_in = &m.counter("omnibus_channel_updates_in_total",
                            "Account updates (template status, quality, …) acknowledged by Kafka", channel);
    duplicates = &m.counter("omnibus_channel_duplicates_total",
                            "Events dropped because their id was accepted within the dedup window", channel);
    kafka_failures = &m.counter("omnibus_channel_kafka_failures_total",
                                "Records of webhook requests that Kafka did not acknowledge (answered 503)", channel);
    windows_forgotten = &m.counter("omnibus_channel_windows_forgotten_total",
                                   "Customers' service windows removed because the customer was erased", channel);
    const auto rejected = [&](std::string_view reason) {
        return &m.counter("omnibus_channel_rejected_total",
                          "Webhook requests refused (4xx) and parts dead-lettered, by reason",
                          {{"channel", name}, {"reason", std::string(reason)}});
    };
    rejected_signature_missing = rejected("signature_missing");
    rejected_signature_malformed = rejected("signature_malformed");
    rejected_signature_mismatch = rejected("signature_mismatch");
    rejected_body_too_large = rejected("body_too_large");
    for (std::size_t i = 0; i < kErrorCodes; ++i)
        rejected_by_code[i] = rejected(envelope::error_code_name(static_cast<envelope::ErrorCode>(i)));
}

void WhatsAppConnector::Core::reject(std::string_view reason) const {
    if (reason == "signature_missing") rejected_signature_missing->inc();
    else if (reason == "signature_malformed") rejected_signature_malformed->inc();
    else if (reason == "signature_mismatch") rejected_signature_mismatch->inc();
    else rejected_body_too_large->inc();
}

void WhatsAppConnector::Core::batch_started() {
    std::lock_guard lock(drain_mu);
    ++active_batches;
}

void WhatsAppConnector::Core::batch_finished() {
    std::lock_guard lock(drain_mu);
    if (--active_batches == 0) drained.notify_all();
}

void WhatsAppConnector::Core::kafka_result(bool ok) {
    if (ok) {
        if (kafka_trouble.exchange(false, std::memory_order_relaxed))
            logger.info("kafka acknowledges webhook events again", {{"channel", name}});
    } else if (!kafka_trouble.exchange(true, std::memory_order_relaxed)) {
        logger.warn("kafka did not acknowledge a webhook event; answering 503 so Meta retries", {{"channel", name}});
    }
}

bool WhatsAppConnector::Core::kafka_can_take() {
    if (producer.fatal() || producer.in_flight() >= kMaxInFlight) return false;
    if (!producer.brokers_down()) {
        if (next_probe_ms.load(std::memory_order_relaxed) != 0) next_probe_ms.store(0, std::memory_order_relaxed);
        return true;
    }
    // Every broker down: refuse at once, except one probe per interval (the
    // first one an interval after the outage was noticed).
    const std::int64_t now = steady_ms();
    std::int64_t next = next_probe_ms.load(std::memory_order_relaxed);
    if (next == 0) {
        next_probe_ms.compare_exchange_strong(next, now + kProbeInterval.count());
        return false;
    }
    return now >= next && next_probe_ms.compare_exchange_strong(next, now + kProbeInterval.count());
}

void WhatsAppConnector::Core::handshake(const edge::Request& request, const edge::Responder& responder) const {
    const HandshakeReply reply =
        verify_subscription(request.query_param("hub.mode").value_or(""),
                            request.query_param("hub.verify_token").value_or(""),
                            request.query_param("hub.challenge").value_or(""), verify_token.reveal());
    if (reply.status == 200)
        responder.respond(edge::Response::text(200, reply.body));
    else
        responder.respond(edge::Response::error(403, "verification failed"));
}

void WhatsAppConnector::Core::handle(edge::Request request, edge::Responder responder) {
    if (request.method == "GET") return handshake(request, responder);
    if (stopping.load(std::memory_order_acquire)) {
        responder.respond(unavailable("channel is stopping"));
        return;
    }
    if (request.body.size() > max_body) {
        reject("body_too_large");
        responder.respond(edge::Response::error(413, "body too large"));
        return;
    }
    const meta::SignatureCheck sig = signer.verify(request.body, request.header(meta::kSignatureHeader).value_or(""));
    if (sig != meta::SignatureCheck::valid) {
        reject("signature_" + std::string(meta::to_string(sig)));
        responder.respond(edge::Response::error(401, "invalid signature"));
        return;
    }
    Result<WebhookEvents> parsed = codec.parse(request.body, envelope::now_ms());
    if (!parsed) {
        reject(parsed.error().code);
        if (parsed.error().code == envelope::ErrorCode::too_large)
            responder.respond(edge::Response::error(413, "body too large"));
        else
            responder.respond(edge::Response::error(400, "not a WhatsApp webhook"));
        return;
    }
    if (!kafka_can_take()) {
        responder.respond(unavailable("kafka unavailable; retry"));
        return;
    }
    WebhookEvents& events = *parsed;

    // Dedup ids: messages by wamid; statuses by (wamid, status, timestamp), as their ce_id.
    // Account updates by their content (they carry no id).
    std::vector<DedupKey> keys;
    keys.reserve(events.messages.size() + events.statuses.size() + events.other.size());
    for (const envelope::Envelope& m : events.messages)
        keys.push_back(dedup_key("m\x1f" + (m.platform ? m.platform->message_id : m.id)));
    for (const DeliveryStatus& s : events.statuses) keys.push_back(dedup_key(status_dedup_id(s)));
    for (const OtherChange& o : events.other)
        keys.push_back(dedup_key("u\x1f" + o.field + "\x1f" + o.waba_id + "\x1f" + o.value.text()));

    auto batch = std::make_shared<Batch>(shared_from_this(), std::move(responder));
    // Every id may turn out to be in flight elsewhere: count them all as waits
    // first (a waiter may run as soon as claim() returns), then release the
    // ones that were not.
    batch->outstanding.fetch_add(static_cast<int>(keys.size()), std::memory_order_relaxed);
    std::vector<DedupStore::Seen> seen;
    dedup.claim(keys, seen, [batch](bool accepted) { batch->waited(accepted); });

    std::vector<kafka::Record> records;
    std::vector<std::ptrdiff_t> record_claim;  // index into batch->claimed, -1 for dead letters
    int not_waiting = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (seen[i] == DedupStore::Seen::in_flight) continue;
        ++not_waiting;
        if (seen[i] == DedupStore::Seen::accepted) {
            ++batch->duplicates;
            continue;
        }
        kafka::Record rec;
        if (i < events.messages.size()) {
            envelope::Envelope& m = events.messages[i];
            if (m.sender.id.starts_with("whatsapp:")) {
                // The customer may be answered free-form for 24 h from their message.
                const envelope::Timestamp sent = m.platform && m.platform->timestamp ? *m.platform->timestamp
                                                                                     : m.received_at;
                const std::int64_t expiry =
                    (sent + std::chrono::duration_cast<std::chrono::milliseconds>(kServiceWindow))
                        .time_since_epoch()
                        .count();
                batch->windows.push_back(
                    {batch->claimed.size(), {dedup_key(window_key(std::string_view(m.sender.id).substr(9))), expiry}});
            }
            std::string key = m.sender.id;  // one customer, one partition: their order is kept
            rec = envelope::encode(m, std::move(key));
            rec.topic = inbound_topic;
            batch->claimed_kind.push_back(Kind::message);
        } else if (i < events.messages.size() + events.statuses.size()) {
            rec = encode(events.statuses[i - events.messages.size()]);
            rec.topic = events_topic;
            batch->claimed_kind.push_back(Kind::status);
        } else {
            OtherChange& o = events.other[i - events.messages.size() - events.statuses.size()];
            ChannelUpdate u{envelope::new_id(), envelope::Channel{std::string(kChannelType), name}, std::move(o.field),
                            o.waba_id.empty() ? std::nullopt : std::optional<std::string>(o.waba_id),
                            envelope::now_ms(), std::move(o.value)};
            rec = encode(u);
            rec.topic = events_topic;
            batch->claimed_kind.push_back(Kind::update);
        }
        record_claim.push_back(static_cast<std::ptrdiff_t>(batch->claimed.size()));
        batch->claimed.push_back(keys[i]);
        records.push_back(std::move(rec));
    }
    batch->claimed_ok.assign(batch->claimed.size(), 0);
    if (batch->duplicates > 0) duplicates->inc(batch->duplicates);
    for (Rejected& r : events.rejected) {
        reject(r.error.code);
        kafka::Record rec;
        rec.topic = deadletter_topic;
        rec.value = r.raw.text();
        rec.headers = {{"omnibus_error", r.error.to_string()},
                       {"omnibus_error_code", std::string(envelope::error_code_name(r.error.code))},
                       {"omnibus_channel", name},
                       {"omnibus_channel_type", std::string(kChannelType)},
                       {"content-type", "application/json"}};
        record_claim.push_back(-1);
        records.push_back(std::move(rec));
    }

    batch->outstanding.fetch_sub(not_waiting, std::memory_order_acq_rel);  // stays >= 1: the own records
    batch->own_left.fetch_add(static_cast<int>(records.size()), std::memory_order_relaxed);
    for (std::size_t i = 0; i < records.size(); ++i) {
        const std::ptrdiff_t claim = record_claim[i];
        producer.produce(std::move(records[i]),
                         [batch, claim](const kafka::DeliveryResult& r) { batch->delivered(claim, r); });
    }
    batch->own_done();  // the handler's share; answers now when nothing was produced
}

// ---- WhatsAppConnector ------------------------------------------------------------

WhatsAppConnector::WhatsAppConnector(const ConnectorContext& ctx) : core_(std::make_shared<Core>(ctx)) {
    const config::Section& b = ctx.block;
    SenderOptions o;
    o.channel = core_->name;
    o.messages_url = b.string("graph_api_url") + "/" + b.string("graph_api_version") + "/" +
                     b.string("phone_number_id") + "/messages";
    o.access_token = b.secret("access_token");
    o.rate_limit = static_cast<int>(b.integer("rate_limit"));
    o.max_retries = static_cast<int>(b.integer("max_retries"));
    o.retry_backoff = b.duration("retry_backoff");
    o.retry_backoff_max = b.duration("retry_backoff_max");
    o.request_timeout = b.duration("request_timeout");
    const config::Section& t = b.section("closed_window_template");
    if (t.has("name")) {
        o.template_name = t.string("name");
        o.template_language = t.string("language");
    }
    o.unknown_window_open = b.string("window_unknown") == "open";
    o.events_topic = core_->events_topic;
    o.deadletter_topic = core_->deadletter_topic;
    o.human_outbox_topic = ctx.kafka.topic_prefix + "outbox.human";
    core_->http = std::make_unique<http::Client>(http::ClientOptions{}, ctx.metrics, core_->name);
    core_->sender = std::make_unique<Sender>(std::move(o), *core_->http, ctx.producer, core_->dedup, ctx.metrics);
    if (core_->max_body > core_->edge.settings().max_body_bytes)
        logger.warn("the edge refuses bodies smaller than this channel's max_webhook_body (413)",
                    {{"channel", core_->name},
                     {"max_webhook_body", static_cast<unsigned long>(core_->max_body)},
                     {"edge_max_body", static_cast<unsigned long>(core_->edge.settings().max_body_bytes)}});
}

WhatsAppConnector::~WhatsAppConnector() { stop(); }

void WhatsAppConnector::start() {
    // The edge may outlive this connector: its route holds the core weakly.
    std::weak_ptr<Core> weak = core_;
    core_->edge.add_channel(edge::ChannelRoute(
        core_->name, {"GET", "POST"},
        [weak](edge::Request request, edge::Responder responder) {
            if (auto core = weak.lock())
                core->handle(std::move(request), std::move(responder));
            else
                responder.respond(unavailable("channel is stopped"));
        },
        edge::RateLimit{core_->webhook_rate_limit, 0}));  // 0: none (the edge's 429 + Retry-After)
    logger.info("whatsapp channel started",
                {{"channel", core_->name}, {"dedup_ids", static_cast<unsigned long>(core_->dedup.size())}});
}

void WhatsAppConnector::deliver(OutboundJob job) { core_->sender->submit(std::move(job)); }

void WhatsAppConnector::release(const std::vector<kafka::TopicPartition>& partitions) {
    core_->sender->release(partitions);
}

void WhatsAppConnector::forget(std::span<const std::string> identities) {
    // whatsapp:<wa_id> and phone:+<digits> may name the same number: one removal counts.
    std::vector<std::string> wa_ids;
    for (const std::string& identity : identities) {
        auto wa_id = window_wa_id(identity);
        if (wa_id && std::find(wa_ids.begin(), wa_ids.end(), *wa_id) == wa_ids.end()) wa_ids.push_back(std::move(*wa_id));
    }
    std::size_t removed = 0;
    for (const std::string& wa_id : wa_ids)
        if (core_->dedup.forget(dedup_key(window_key(wa_id)))) ++removed;
    if (removed == 0) return;  // the usual case on a replay: forgotten the first time
    // On disk before the identity log reader moves on (no fsync: see dedup_store.h).
    core_->dedup.flush();
    core_->windows_forgotten->inc(removed);
    logger.info("erased customers' service windows forgotten",
                {{"channel", core_->name}, {"windows", static_cast<unsigned long>(removed)}});
}

void WhatsAppConnector::stop() {
    if (core_->stopping.exchange(true, std::memory_order_acq_rel)) return;
    // Outbound first: replies not on the wire go back to Kafka; answers still
    // coming within the budget complete theirs.
    core_->sender->stop(kDrainTimeout);
    core_->http->stop();
    bool drained = false;
    {
        std::unique_lock lock(core_->drain_mu);
        drained = core_->drained.wait_for(lock, kDrainTimeout, [&] { return core_->active_batches == 0; });
    }
    core_->dedup.close();
    if (!drained)
        logger.warn("whatsapp channel stopped with requests in flight; their ids are not persisted for dedup",
                    {{"channel", core_->name}});
    else
        logger.info("whatsapp channel stopped", {{"channel", core_->name}});
}

ConnectorType connector_type() {
    return ConnectorType{std::string(kChannelType),
                         "WhatsApp Business Platform (Cloud API): webhooks in, Graph API out", whatsapp_spec(),
                         [](const ConnectorContext& ctx) -> std::unique_ptr<Connector> {
                             return std::make_unique<WhatsAppConnector>(ctx);
                         }};
}

}  // namespace omnibus::connectors::whatsapp
