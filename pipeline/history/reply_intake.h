// ReplyIntake: the way in for what downstream writes back. It consumes <prefix>replies (the
// AI service and the helpdesk produce there, keyed as they like) in the consumer group
// <group_id>.replies, checks each record and re-keys it onto <prefix>pipeline.customer under
// the customer's surviving id, where the conversation stage that holds that customer's
// history appends it, chooses the channel and hands it to <prefix>delivery
// (conversation_stage.h). docs/pipeline.md, "Replies", documents the format.
//
// Accepted (ce_type):
//   com.omnibus.message.outbound   an outbound envelope (docs/envelope.md) with customer_id,
//                                  content with text or attachments, sender.id naming the
//                                  author ("ai:<name>" or "agent:<id>"); channel optional (the
//                                  pipeline chooses), conversation_id optional.
//   com.omnibus.conversation.takeover / .release
//                                  JSON data {"customer_id", "agent", "conversation_id"?}: a
//                                  human takes the conversation over, or hands it back.
// Everything else goes to <prefix>deadletter with the reason (codes: the envelope decode
// codes, not_outbound, missing_customer, unknown_customer (never seen, or erased), bad_author,
// empty_reply, bad_command, unknown_type), and is committed: a bad reply never blocks a
// partition and nothing crashes.
//
// Threads: the consumer thread checks and produces; acknowledgements complete the records on
// the producer's thread. Order: records are produced in the order they were consumed, so one
// customer's replies stay in order when downstream keys them by customer (as it should).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"

namespace omnibus::pipeline::history {

// Who wrote a reply, from its sender.id: "ai:<name>" → "ai", "agent:<id>" → "agent:<id>";
// nullopt for anything else.
std::optional<std::string> reply_author(std::string_view sender_id);

struct ReplyIntakeOptions {
    std::string group_id;          // e.g. "omnibus.replies"
    std::string input_topic;       // <prefix>replies
    std::string output_topic;      // <prefix>pipeline.customer
    std::string deadletter_topic;  // <prefix>deadletter
    // The surviving customer id for an id (itself unless merged), nullopt when no such customer
    // exists (never seen, or erased). Any thread.
    std::function<std::optional<std::string>(std::string_view customer)> survivor;
    std::size_t max_in_flight = 10000;
};

class ReplyIntake {
public:
    // Starts consuming at once. References must outlive it.
    ReplyIntake(const kafka::KafkaSettings& settings, ReplyIntakeOptions options, kafka::Producer& producer,
                metrics::Registry& metrics);
    ~ReplyIntake();  // stop()
    ReplyIntake(const ReplyIntake&) = delete;
    ReplyIntake& operator=(const ReplyIntake&) = delete;

    void stop();  // idempotent
    bool has_assignment() const { return consumer_ && consumer_->has_assignment(); }

private:
    void on_record(const kafka::ConsumedRecord& rec, kafka::Completion done);
    void dead_letter(const kafka::ConsumedRecord& rec, std::string_view code, std::string reason,
                     std::shared_ptr<kafka::Completion> done);

    ReplyIntakeOptions options_;
    kafka::Producer& producer_;
    metrics::Counter* accepted_;
    metrics::Counter* dead_letters_;
    std::unique_ptr<kafka::Consumer> consumer_;
};

}  // namespace omnibus::pipeline::history
