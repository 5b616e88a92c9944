// The instance directory (see instance_directory.h).
#include "daemon/instance_directory.h"

#include "envelope/timestamp.h"
#include "log/log.h"

namespace omnibus::daemon {
namespace {

constexpr log::Logger lg{"instances"};

}  // namespace

InstanceDirectory::InstanceDirectory(const kafka::KafkaSettings& settings, InstanceDirectoryOptions options,
                                     kafka::Producer& producer, metrics::Registry& metrics)
    : options_(std::move(options)), producer_(producer) {
    announced_ = &metrics.counter("omnibus_instances_announced_total",
                                  "Records this instance wrote to the instances topic (its history partitions)");
    announce_errors_ = &metrics.counter("omnibus_instances_announce_errors_total",
                                        "Announcements Kafka did not take; the next change announces again");
    ignored_ = &metrics.counter("omnibus_instances_ignored_records_total",
                                "Records on the instances topic that were unreadable or refused");
    swept_count_ = &metrics.counter("omnibus_instances_swept_total",
                              "Left-over records of instances that ended without their tombstone, removed");
    kafka::LogReaderOptions ro;
    ro.topic = options_.topic;
    ro.partition = 0;
    ro.start_offset = kafka::LogReader::kBeginning;
    ro.on_records = [this](std::vector<kafka::LogRecord>& records) {
        std::lock_guard lock(mu_);
        for (const auto& r : records) {
            if (!r.tombstone) swept_.erase(r.record.key);  // back on the log: ours to judge again
            if (!map_.read(r.record.key, r.record.value, r.tombstone, r.offset, options_.partition_count,
                           options_.instance, options_.admin_url))
                ignored_->inc();
        }
        sweep();
    };
    ro.on_gap = [this](std::int64_t, std::int64_t) {
        // Reading starts again from what the log still holds; what came before is not trusted.
        std::lock_guard lock(mu_);
        map_.clear();
    };
    reader_ = std::make_unique<kafka::LogReader>(settings, metrics, std::move(ro));
}

InstanceDirectory::~InstanceDirectory() { stop(); }

void InstanceDirectory::sweep() {
    if (stopped_) return;
    const std::int64_t now = envelope::now_ms().time_since_epoch().count();
    for (std::string& instance : map_.stale(options_.instance, now, options_.stale_after.count())) {
        if (!swept_.insert(instance).second) continue;  // ours is on its way
        lg.info("removing a left-over record of an instance that ended without its tombstone",
                {{"instance", instance}});
        swept_count_->inc();
        kafka::Record tomb;
        tomb.topic = options_.topic;
        tomb.key = std::move(instance);
        tomb.tombstone = true;
        tomb.partition = 0;
        // Several instances may send the same tombstone; any one of them does it. One Kafka did
        // not take leaves the record to the other instances, and to this one's next start.
        producer_.produce(std::move(tomb), [](const kafka::DeliveryResult&) {});
    }
}

kafka::Record InstanceDirectory::record(std::vector<int> partitions) const {
    InstanceRecord r{options_.instance, options_.admin_url, std::move(partitions), envelope::now_ms().time_since_epoch().count()};
    kafka::Record rec;
    rec.topic = options_.topic;
    rec.key = options_.instance;
    rec.value = encode(r);
    rec.partition = 0;
    rec.headers.push_back({"content-type", "application/json"});
    return rec;
}

void InstanceDirectory::announce(std::vector<int> partitions) {
    std::lock_guard lock(mu_);
    if (stopped_ || options_.admin_url.empty()) return;  // no URL: nobody could be sent here
    const std::size_t held = partitions.size();
    // The callback may run after this object is gone (the producer is flushed last): it holds
    // only the counter, which the registry owns.
    producer_.produce(record(std::move(partitions)), [errors = announce_errors_, held](const kafka::DeliveryResult& d) {
        if (d.ok()) return;
        // Readers keep the previous announcement until the next change; the conversation stage
        // announces at every assignment change.
        errors->inc();
        lg.warn("instance announcement not written", {{"error", d.message}, {"partitions", held}});
    });
    announced_->inc();
}

std::optional<Holder> InstanceDirectory::holder(int partition) const {
    std::lock_guard lock(mu_);
    auto h = map_.holder(partition);
    if (h && h->instance == options_.instance) return std::nullopt;
    return h;
}

void InstanceDirectory::stop() {
    {
        std::lock_guard lock(mu_);
        if (stopped_) return;
        stopped_ = true;
        kafka::Record tomb;
        tomb.topic = options_.topic;
        tomb.key = options_.instance;
        tomb.tombstone = true;
        tomb.partition = 0;
        producer_.produce(std::move(tomb), [](const kafka::DeliveryResult& d) {
            if (!d.ok()) lg.warn("instance tombstone not written; its last announcement stays until the next holders announce",
                                 {{"error", d.message}});
        });
    }
    if (reader_) reader_->stop();
}

}  // namespace omnibus::daemon
