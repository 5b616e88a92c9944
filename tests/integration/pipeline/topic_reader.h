// TopicReader: reads a topic in a consumer group of its own and keeps every record and every
// envelope it could decode, for tests that check what a stage wrote.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "envelope/envelope.h"
#include "kafka/consumer.h"
#include "metrics/metrics.h"

namespace omnibus::kafka::test {

// Reads a topic in a group of its own and keeps every decoded envelope (and the raw count).
class TopicReader {
public:
    TopicReader(const KafkaSettings& s, metrics::Registry& reg, std::string topic) {
        ConsumerOptions o;
        o.group_id = "test-reader-" + topic;
        o.topics = {std::move(topic)};
        o.handler = [this](const ConsumedRecord& r) {
            std::lock_guard lock(mu_);
            raw_.push_back(r);
            if (auto e = envelope::decode(r.record); e.ok()) envelopes_.push_back(std::move(e).value());
            return Disposition::done;
        };
        consumer_ = std::make_unique<Consumer>(s, std::move(o), reg);
    }
    std::size_t size() const {
        std::lock_guard lock(mu_);
        return raw_.size();
    }
    std::vector<envelope::Envelope> envelopes() const {
        std::lock_guard lock(mu_);
        return envelopes_;
    }
    std::vector<ConsumedRecord> raw() const {
        std::lock_guard lock(mu_);
        return raw_;
    }
    const envelope::Envelope* find(const std::vector<envelope::Envelope>& all, const std::string& id) const {
        for (const auto& e : all)
            if (e.id == id) return &e;
        return nullptr;
    }

private:
    mutable std::mutex mu_;
    std::vector<ConsumedRecord> raw_;
    std::vector<envelope::Envelope> envelopes_;
    std::unique_ptr<Consumer> consumer_;
};

}  // namespace omnibus::kafka::test
