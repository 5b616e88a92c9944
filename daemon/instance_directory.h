// InstanceDirectory: which omnibusd instance holds which history partition, and where its
// admin API answers, so an admin request for a customer whose history lives elsewhere can be
// forwarded there (customer_api.h). Each instance announces itself on the compacted,
// single-partition topic <prefix>instances (instance_record.h has the format): at start,
// whenever the conversation stage's held partitions change, and with a tombstone at a clean
// shutdown. Every instance reads the whole topic (kafka::LogReader, no consumer group) into a
// HolderMap.
//
// Why a topic and not the consumer group's own metadata: a member's metadata cannot carry an
// admin URL without replacing the assignor, and the group says who is assigned a partition,
// not who has restored its store and can answer (docs/pipeline.md, "Which instance answers").
//
// Threads:
//   - announce() from any thread (the conversation stage's consumer thread, the topic keeper
//     at start); records are produced under mu_, so they reach the log in call order, and the
//     partition's one total order makes the last announcement the one every reader keeps.
//   - The LogReader's thread applies the log to map_ under mu_.
//   - holder() from admin threads, under mu_.
//   - stop() from the main thread (shutdown), after the conversation stage stopped.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/instance_record.h"
#include "kafka/log_reader.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"

namespace omnibus::daemon {

struct InstanceDirectoryOptions {
    std::string topic;          // <prefix>instances, one partition
    std::string instance;       // this instance's id (the key of its records)
    std::string admin_url;      // what it advertises (admin.advertise); "": it reads, never announces
    int partition_count = 1;    // of <prefix>pipeline.customer
    // A record left over by an instance that ended without its tombstone (HolderMap::stale) is
    // removed with a tombstone of ours once it is this old and a record of the log shows it.
    std::chrono::milliseconds stale_after{std::chrono::minutes(10)};
};

class InstanceDirectory {
public:
    // Starts reading the topic from its beginning. Throws what LogReader throws (bad settings).
    // `producer` and `metrics` must outlive it.
    InstanceDirectory(const kafka::KafkaSettings& settings, InstanceDirectoryOptions options, kafka::Producer& producer,
                      metrics::Registry& metrics);
    ~InstanceDirectory();  // stop()
    InstanceDirectory(const InstanceDirectory&) = delete;
    InstanceDirectory& operator=(const InstanceDirectory&) = delete;

    // Tells every instance that this one holds exactly `partitions` now. Nothing after stop().
    void announce(std::vector<int> partitions);

    // Another instance that holds `partition` according to the log; nullopt when none is known,
    // and when the log names this instance (it held the partition and gave it up: the
    // announcement saying so is not read back yet).
    std::optional<Holder> holder(int partition) const;

    // Writes the tombstone (the producer's flush sends it), stops reading. Idempotent.
    void stop();

private:
    kafka::Record record(std::vector<int> partitions) const;

    InstanceDirectoryOptions options_;
    kafka::Producer& producer_;
    metrics::Counter* announced_;
    metrics::Counter* announce_errors_;
    metrics::Counter* ignored_;
    metrics::Counter* swept_count_;

    mutable std::mutex mu_;
    HolderMap map_;         // guarded by mu_
    bool stopped_ = false;  // guarded by mu_
    std::set<std::string, std::less<>> swept_;  // guarded by mu_: left-over records we tombstoned
    void sweep();  // under mu_: tombstones for what the map says is left over
    std::unique_ptr<kafka::LogReader> reader_;
};

}  // namespace omnibus::daemon
