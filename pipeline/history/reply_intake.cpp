// Replies from downstream onto the customer's partition (see reply_intake.h).
#include "pipeline/history/reply_intake.h"

#include "envelope/cloudevent.h"
#include "envelope/envelope.h"
#include "kafka/dead_letter.h"
#include "log/log.h"
#include "pipeline/history/history_commands.h"

namespace omnibus::pipeline::history {
namespace {

constexpr log::Logger logger{"replies"};
log::Throttle log_output_refused;  // per record while Kafka is out

}  // namespace

std::optional<std::string> reply_author(std::string_view sender_id) {
    const std::size_t colon = sender_id.find(':');
    if (colon == std::string_view::npos || colon + 1 == sender_id.size()) return std::nullopt;
    const std::string_view kind = sender_id.substr(0, colon);
    if (kind == "ai") return std::string("ai");
    if (kind == "agent") return std::string(sender_id);
    return std::nullopt;
}

ReplyIntake::ReplyIntake(const kafka::KafkaSettings& settings, ReplyIntakeOptions options, kafka::Producer& producer,
                         metrics::Registry& metrics)
    : options_(std::move(options)), producer_(producer) {
    if (!options_.survivor) throw std::invalid_argument("reply intake: survivor lookup missing");
    accepted_ = &metrics.counter("omnibus_replies_accepted_total",
                                 "Replies and hand-off commands passed on to the customer's history partition");
    dead_letters_ = &metrics.counter("omnibus_replies_dead_letters_total",
                                     "Records on the replies topic that were invalid, sent to the dead-letter topic");
    kafka::ConsumerOptions co;
    co.group_id = options_.group_id;
    co.topics = {options_.input_topic};
    co.max_in_flight = options_.max_in_flight;
    co.async_handler = [this](const kafka::ConsumedRecord& rec, kafka::Completion done) {
        on_record(rec, std::move(done));
    };
    consumer_ = std::make_unique<kafka::Consumer>(settings, std::move(co), metrics);
}

ReplyIntake::~ReplyIntake() { stop(); }

void ReplyIntake::stop() {
    if (consumer_) consumer_->stop();
}

void ReplyIntake::on_record(const kafka::ConsumedRecord& rec, kafka::Completion completion) {
    auto done = std::make_shared<kafka::Completion>(std::move(completion));
    auto attrs = envelope::read_attribute_views(rec.record);
    if (!attrs.ok())
        return dead_letter(rec, envelope::error_code_name(attrs.error().code), attrs.error().to_string(), done);

    std::string customer;
    if (attrs->type == kTakeoverType || attrs->type == kReleaseType) {
        auto cmd = decode_handoff(rec.record.value, attrs->type == kTakeoverType);
        if (!cmd.ok()) return dead_letter(rec, "bad_command", cmd.error().to_string(), done);
        customer = cmd->customer;
    } else if (attrs->type == envelope::event_type::message_outbound ||
               attrs->type == envelope::event_type::message_inbound) {
        envelope::DecodeOptions dopt;
        dopt.channel_optional = true;
        auto env = envelope::decode(rec.record, dopt);
        if (!env.ok())
            return dead_letter(rec, envelope::error_code_name(env.error().code), env.error().to_string(), done);
        if (env->direction != envelope::Direction::outbound)
            return dead_letter(rec, "not_outbound", "the replies topic takes outbound messages only", done);
        if (!env->customer_id || env->customer_id->empty())
            return dead_letter(rec, "missing_customer", "customer_id: required on a reply", done);
        if (!reply_author(env->sender.id))
            return dead_letter(rec, "bad_author",
                               "sender.id: expected \"ai:<name>\" or \"agent:<id>\", got \"" + env->sender.id + "\"",
                               done);
        const auto& c = env->content;
        const bool has_text = c.text && !c.text->empty();
        if (!has_text && c.attachments.empty() && c.type != envelope::ContentType::template_)
            return dead_letter(rec, "empty_reply", "content: a reply needs text or attachments", done);
        customer = *env->customer_id;
    } else {
        return dead_letter(rec, "unknown_type", "ce_type \"" + std::string(attrs->type) + "\" is not a reply", done);
    }

    auto survivor = options_.survivor(customer);
    if (!survivor)
        return dead_letter(rec, "unknown_customer", "customer " + customer + " does not exist (or was erased)", done);

    // The record as it came (headers and body), under the survivor's key: the conversation
    // stage takes the key as the customer.
    kafka::Record out = rec.record;
    out.topic = options_.output_topic;
    out.key = std::move(*survivor);
    out.partition = -1;
    accepted_->inc();
    producer_.produce(std::move(out), [done](const kafka::DeliveryResult& r) {
        std::uint64_t n = 0;
        if (!r.ok() && log_output_refused.allow(n))
            logger.warn("reply not taken by Kafka; handed out again", {{"error", r.message}, {"occurrences", n}});
        done->settle(r.ok());
    });
}

void ReplyIntake::dead_letter(const kafka::ConsumedRecord& rec, std::string_view code, std::string reason,
                              std::shared_ptr<kafka::Completion> done) {
    dead_letters_->inc();
    logger.warn("reply dead-lettered", {{"code", code}, {"reason", reason}, {"partition", rec.partition},
                                        {"offset", static_cast<long long>(rec.offset)}});
    producer_.produce(kafka::dead_letter(rec, options_.deadletter_topic, code, std::move(reason)),
                      [done](const kafka::DeliveryResult& r) { done->settle(r.ok()); });
}

}  // namespace omnibus::pipeline::history
