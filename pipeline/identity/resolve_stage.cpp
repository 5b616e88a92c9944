// The resolve stage: inbound message → customer id (see resolve_stage.h).
#include "pipeline/identity/resolve_stage.h"

#include "envelope/envelope.h"
#include "kafka/dead_letter.h"
#include "log/log.h"

namespace omnibus::pipeline::identity {
namespace {

constexpr log::Logger logger{"resolve"};
log::Throttle log_output_refused;  // per record while Kafka is out

}  // namespace

struct ResolveStage::Work {
    kafka::ConsumedRecord rec;
    envelope::Envelope env;
    std::shared_ptr<kafka::Completion> done;
};

ResolveStage::ResolveStage(const kafka::KafkaSettings& settings, ResolveStageOptions options,
                           IdentityService& identity, kafka::Producer& producer, metrics::Registry& metrics)
    : options_(std::move(options)), identity_(identity), producer_(producer), builder_(options_.identity) {
    resolved_local_ = &metrics.counter("omnibus_resolve_messages_total", "Inbound messages given their customer",
                                       {{"via", "store"}});
    resolved_log_ = &metrics.counter("omnibus_resolve_messages_total", "Inbound messages given their customer",
                                     {{"via", "log"}});
    dead_letters_ = &metrics.counter("omnibus_resolve_dead_letters_total",
                                     "Inbound records the resolve stage could not process, sent to the dead-letter topic");
    retries_ = &metrics.counter("omnibus_resolve_retries_total",
                                "Inbound messages handed out again because the identity log could not take a request");
    kafka::ConsumerOptions co;
    co.group_id = options_.group_id;
    co.topics = {options_.input_topic};
    co.max_in_flight = options_.max_in_flight;
    co.async_handler = [this](const kafka::ConsumedRecord& rec, kafka::Completion done) {
        on_record(rec, std::move(done));
    };
    consumer_ = std::make_unique<kafka::Consumer>(settings, std::move(co), metrics);
}

ResolveStage::~ResolveStage() { stop(); }

void ResolveStage::stop() {
    if (consumer_) consumer_->stop();
}

void ResolveStage::on_record(const kafka::ConsumedRecord& rec, kafka::Completion done) {
    auto w = std::make_shared<Work>();
    w->rec = rec;
    w->done = std::make_shared<kafka::Completion>(std::move(done));
    auto decoded = envelope::decode(rec.record);
    if (!decoded.ok())
        return dead_letter(w, envelope::error_code_name(decoded.error().code), decoded.error().to_string());
    w->env = std::move(decoded).value();
    if (w->env.direction != envelope::Direction::inbound)
        return dead_letter(w, "not_inbound", "the inbound topic takes inbound messages only");
    {
        std::lock_guard lock(mu_);
        auto [it, first] = waiting_.try_emplace(w->env.sender.id);
        if (!first) {
            it->second.push_back(std::move(w));  // behind an earlier message of the same sender
            return;
        }
    }
    start(std::move(w));
}

void ResolveStage::start(std::shared_ptr<Work> w) {
    // Messages that resolve at once are followed by the next of their sender in this loop;
    // one that waits for the identity log continues from its callback.
    while (w) {
        const std::string sender = w->env.sender.id;
        auto set = builder_.identities_of(w->env);
        if (!set.ok()) {
            dead_letter(w, "bad_identity", set.error().to_string());
        } else {
            std::optional<std::string> customer;
            bool one = true;
            for (const auto& id : set->identities) {
                auto c = identity_.resolve_identity(id);
                if (!c || (customer && *c != *customer)) {
                    one = false;
                    break;
                }
                customer = std::move(c);
            }
            if (one && customer) {
                resolved_local_->inc();
                emit(w, *customer);
            } else {
                Request r;
                r.op = Op::observe;
                r.customer = envelope::new_id();
                r.identities = std::move(set->identities);
                identity_.submit(std::move(r), [this, w](const Outcome& o) { resolved(w, o); });
                return;
            }
        }
        // The sender's next message, if one waits.
        std::lock_guard lock(mu_);
        auto it = waiting_.find(sender);
        if (it == waiting_.end() || it->second.empty()) {
            if (it != waiting_.end()) waiting_.erase(it);
            w = nullptr;
        } else {
            w = std::move(it->second.front());
            it->second.pop_front();
        }
    }
}

void ResolveStage::resolved(const std::shared_ptr<Work>& w, const Outcome& o) {
    if (o.ok) {
        resolved_log_->inc();
        if (!o.merges.empty())
            logger.info("customers merged by a message", {{"into", o.customer}, {"merges", o.merges.size()}});
        emit(w, o.customer);
    } else if (o.error.rfind("not appended", 0) == 0 || o.error == "identity service stopped") {
        retries_->inc();
        w->done->abandon();  // handed out again (or to the partition's next owner)
    } else {
        dead_letter(w, "identity_rejected", o.error);
    }
    next_of(w->env.sender.id);
}

void ResolveStage::next_of(const std::string& sender) {
    std::shared_ptr<Work> next;
    {
        std::lock_guard lock(mu_);
        auto it = waiting_.find(sender);
        if (it == waiting_.end()) return;
        if (it->second.empty()) {
            waiting_.erase(it);
            return;
        }
        next = std::move(it->second.front());
        it->second.pop_front();
    }
    start(std::move(next));
}

void ResolveStage::emit(const std::shared_ptr<Work>& w, const std::string& customer) {
    kafka::Record out;
    std::optional<std::string> body;
    if (!w->env.customer_id) body = envelope::with_customer_id(w->rec.record.value, customer);
    if (body) {
        // Only the customer id is new: the record as it came (its headers too), keyed by the
        // customer, without decoding and encoding the rest of the body again.
        out.key = customer;
        out.value = std::move(*body);
        out.headers = std::move(w->rec.record.headers);
    } else {
        w->env.customer_id = customer;
        out = envelope::encode(w->env, customer);
    }
    out.topic = options_.output_topic;
    auto done = w->done;
    producer_.produce(std::move(out), [done](const kafka::DeliveryResult& r) {
        if (r.ok()) {
            done->done();
        } else {
            std::uint64_t n = 0;
            if (log_output_refused.allow(n))
                logger.warn("resolved message not taken by Kafka; handed out again",
                            {{"error", r.message}, {"occurrences", n}});
            done->abandon();
        }
    });
}

void ResolveStage::dead_letter(const std::shared_ptr<Work>& w, std::string_view code, std::string reason) {
    dead_letters_->inc();
    logger.warn("inbound record dead-lettered", {{"code", code}, {"reason", reason}, {"partition", w->rec.partition},
                                                 {"offset", static_cast<long long>(w->rec.offset)}});
    auto done = w->done;
    producer_.produce(kafka::dead_letter(w->rec, options_.deadletter_topic, code, std::move(reason)),
                      [done](const kafka::DeliveryResult& r) {
                          done->settle(r.ok());
                      });
}

}  // namespace omnibus::pipeline::identity
