// ResolveStage: the pipeline stage that finds the customer of every inbound message. It
// consumes <prefix>inbound (keyed by channel identity) in the consumer group
// <group_id>.identity and produces each message, with customer_id set, to
// <prefix>pipeline.customer keyed by that customer id, so that one customer's messages from
// every channel meet on one partition of the conversation stage.
//
// Per message:
//   - The identities it shows (identity_set.h: the channel identity first, then what may link
//     automatically) are looked up in the local identity store. When all of them are known
//     and belong to one customer, that is the customer: no request, no wait (the common case).
//   - Otherwise an `observe` request goes on the identity log, proposing a new customer id;
//     the message waits (asynchronously: the consumer thread goes on) until the request has
//     applied here, and takes the customer the log decided. Concurrent first contacts on two
//     instances therefore end as one customer.
//   - Order: one sender's messages leave in the order they came (a later message of the same
//     channel identity waits for an earlier one still resolving).
//   - Undecodable envelopes and requests the identity log rejects go to <prefix>deadletter
//     with the reason; a request that could not be appended (Kafka down) hands the message
//     out again after the consumer's retry backoff.
// The record is done (its offset may be committed) only once Kafka acknowledged the output.
//
// Threads: the consumer thread runs the handler; identity outcomes arrive on the identity
// log's reader thread; acknowledgements on the producer's poll thread. The per-sender queues
// are guarded by mu_.
#pragma once

#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"
#include "pipeline/identity/identity_service.h"
#include "pipeline/identity/identity_set.h"
#include "pipeline/pipeline_settings.h"

namespace omnibus::pipeline::identity {

struct ResolveStageOptions {
    std::string group_id;          // e.g. "omnibus.identity"
    std::string input_topic;       // <prefix>inbound
    std::string output_topic;      // <prefix>pipeline.customer
    std::string deadletter_topic;  // <prefix>deadletter
    IdentitySettings identity;
    std::size_t max_in_flight = 20000;
};

class ResolveStage {
public:
    // Starts consuming at once. References must outlive the stage.
    ResolveStage(const kafka::KafkaSettings& settings, ResolveStageOptions options, IdentityService& identity,
                 kafka::Producer& producer, metrics::Registry& metrics);
    ~ResolveStage();  // stop()
    ResolveStage(const ResolveStage&) = delete;
    ResolveStage& operator=(const ResolveStage&) = delete;

    void stop();  // idempotent
    bool has_assignment() const { return consumer_ && consumer_->has_assignment(); }

    struct Work;  // resolve_stage.cpp: one message on its way

private:
    void on_record(const kafka::ConsumedRecord& rec, kafka::Completion done);  // consumer thread
    void start(std::shared_ptr<Work> w);  // resolve one message (the head of its sender's queue)
    void resolved(const std::shared_ptr<Work>& w, const Outcome& o);
    void emit(const std::shared_ptr<Work>& w, const std::string& customer);
    void next_of(const std::string& sender);  // the sender's head left: start the next one
    void dead_letter(const std::shared_ptr<Work>& w, std::string_view code, std::string reason);

    ResolveStageOptions options_;
    IdentityService& identity_;
    kafka::Producer& producer_;
    IdentitySetBuilder builder_;
    metrics::Counter* resolved_local_;
    metrics::Counter* resolved_log_;
    metrics::Counter* dead_letters_;
    metrics::Counter* retries_;

    std::mutex mu_;
    // Senders with a message resolving: the messages waiting behind it, in order. Guarded by mu_.
    std::unordered_map<std::string, std::deque<std::shared_ptr<Work>>> waiting_;

    std::unique_ptr<kafka::Consumer> consumer_;  // last: stopped first
};

}  // namespace omnibus::pipeline::identity
