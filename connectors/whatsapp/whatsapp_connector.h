// The WhatsApp channel's I/O shell. Outbound: replies handed over by the
// delivery dispatcher go to the Sender (whatsapp_sender.h), which shares the
// dedup store: every acknowledged inbound message records when its sender's
// 24-hour service window closes.
//
// Inbound side: the /webhooks/<name> route on
// the public edge. GET answers Meta's subscription handshake; POST checks the
// signature on the raw body, parses it (whatsapp_codec.h), produces messages to
// <prefix>inbound (key: the sender identity), statuses and account updates
// (template status, quality rating, …) to <prefix>events and unusable parts
// to <prefix>deadletter, and answers 200 only once Kafka
// acknowledged every record of the request (503 otherwise: Meta retries).
// Event ids already accepted within the dedup window produce nothing again
// (dedup_store.h, persisted under <state_dir>/channels/<name>/dedup).
//
// Answers: 200 accepted (also when everything was a duplicate); 400 not a
// webhook; 401 bad or missing signature; 403 failed handshake; 413 over
// max_webhook_body; 503 Kafka failed or cannot take events now (answered at
// once while the producer reports every broker down or too much in flight),
// or the connector is stopping. Nothing is produced for 4xx answers.
//
// Threads: the handler runs on the edge's worker threads and never blocks;
// delivery callbacks run on the producer's poll thread and answer the request
// when its last record is settled. Per-request state is a shared Batch object
// owned by those callbacks; the connector-wide state (codec, signer, dedup
// store, metric series) is immutable after construction or internally
// synchronised, and stays alive while any callback holds it.
#pragma once

#include <memory>

#include "connectors/registry.h"

namespace omnibus::connectors::whatsapp {

// `type: whatsapp`: spec, description and factory, for registry.cpp.
ConnectorType connector_type();

class WhatsAppConnector final : public Connector {
public:
    // Reads the block, opens the dedup store and registers the route on
    // ctx.edge. Throws on bad settings or an unusable state directory.
    explicit WhatsAppConnector(const ConnectorContext& ctx);
    ~WhatsAppConnector() override;  // stop()

    void start() override;
    // New requests get 503; waits (bounded) for requests in flight to be
    // settled, then closes the dedup store. Idempotent.
    void stop() override;

    // Outbound (whatsapp_sender.h): replies for this channel from the delivery topic.
    bool delivers() const override { return true; }
    void deliver(OutboundJob job) override;
    void release(const std::vector<kafka::TopicPartition>& partitions) override;

    // Erasure: removes the service windows of the erased whatsapp:<wa_id> and
    // phone:+<digits> identities from the dedup store (memory, then RocksDB, flushed
    // before it returns when something was removed), so a later reply to that number
    // meets `window_unknown`. Message ids in the dedup window stay until they expire
    // (README: they do not name the person, and they keep Meta's redeliveries of the
    // erased messages out).
    void forget(std::span<const std::string> identities) override;

    struct Core;  // defined in the .cpp

private:
    std::shared_ptr<Core> core_;
};

}  // namespace omnibus::connectors::whatsapp
