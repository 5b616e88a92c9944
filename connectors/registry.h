// The connector registry: every channel type omnibus can run, by type name,
// with its option spec and its factory. registry.cpp is the one list of the
// built-in types (explicit registration: no static initialisers that a linker
// could drop).
//
// Threads: filled once at start-up, then only read (from any thread).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/section.h"
#include "config/spec.h"
#include "connectors/outbound.h"
#include "edge/edge_server.h"

namespace omnibus::kafka {
class Producer;
struct KafkaSettings;
}  // namespace omnibus::kafka
namespace omnibus::metrics {
class Registry;
}

namespace omnibus::connectors {

// What a channel instance gets from the daemon when it is built.
struct ConnectorContext {
    const config::Section& block;       // the channel's YAML block: name, type and its own options
    const kafka::KafkaSettings& kafka;  // topic prefix and the rest of the Kafka settings
    kafka::Producer& producer;          // the daemon's one producer (acks=all, idempotent)
    metrics::Registry& metrics;
    edge::EdgeServer& edge;             // add /webhooks/<name> and WebSocket routes here; started after the channels
    std::string state_dir;              // writable; a channel keeps its state under <state_dir>/channels/<name>/
};

// One running channel instance. start() may throw on start-up failures (they
// stop the daemon with a clear message); stop() stops taking new work and
// drains within the daemon's shutdown budget.
//
// Outbound: a channel that delivers replies returns true from delivers(); the
// daemon's delivery dispatcher (delivery_dispatcher.h) then hands it every
// reply on <prefix>delivery whose channel.name is this channel's, through
// deliver(), and calls release() with the partitions a rebalance takes away
// (abandon queued work of those: their next owner delivers it). deliver() and
// release() run on the dispatcher's consumer thread and must not block; the
// daemon stops the dispatcher before the channels.
//
// Erasure: when this instance applies an `erase` from the identity log (every
// instance applies every one, also when it replays the log at start-up), the
// daemon calls forget() on every channel with the identity strings the erased
// customer had (`whatsapp:<wa_id>`, `phone:+<E.164>`, …; docs/connectors.md).
// The channel drops what it keeps locally about them. It runs on the identity
// log reader's thread, after every channel's start(), also after stop(): it
// must be cheap (a local store write at most, no network), idempotent (an
// identity never seen is a no-op), and must not log the identities.
class Connector {
public:
    virtual ~Connector() = default;
    virtual void start() = 0;
    virtual void stop() = 0;

    virtual bool delivers() const { return false; }
    virtual void deliver(OutboundJob job) { job.done.abandon(); }
    virtual void release(const std::vector<kafka::TopicPartition>& /*partitions*/) {}

    virtual void forget(std::span<const std::string> /*identities*/) {}
};

struct ConnectorType {
    std::string name;         // the `type:` of a channel block
    std::string description;  // one line, for the configuration reference
    config::Spec spec;        // the block's options besides `name`, `type` and the common ones
    std::function<std::unique_ptr<Connector>(const ConnectorContext&)> create;
};

class Registry {
public:
    // Throws std::logic_error when the name is taken.
    void add(ConnectorType type);
    const ConnectorType* find(std::string_view name) const;
    std::vector<std::string> names() const;
    // For the `channels:` block list of the config schema. The registry must
    // outlive every load that uses it.
    config::BlockTypes block_types() const;

private:
    std::deque<ConnectorType> types_;  // a deque: specs keep their address
};

// The options every channel block has besides its type's own (`language`);
// Registry::add adds them to each type's spec.
void add_common_options(config::Spec& spec);

// Registers every built-in channel type (connectors/registry.cpp).
void register_builtin_connectors(Registry& registry);

}  // namespace omnibus::connectors
