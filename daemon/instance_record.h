// Which instance holds which history partition, as the instances announce it on the compacted
// topic <prefix>instances: the record format, the admin URL rule, and the map the records
// add up to. Pure: no I/O, no clock, no globals (instance_directory.h is the shell).
//
// A record is keyed by the instance id ("<hostname>:<pid>") and its value is one JSON object:
//   {"instance": "web-1:4242", "admin_url": "http://10.0.0.5:9090", "partitions": [0, 3],
//    "at": "2026-11-25T12:00:00.000Z"}
// `partitions` are the partitions of <prefix>pipeline.customer whose history the instance
// holds (assigned and restored). A tombstone (null value) says the instance left. Unknown
// members are ignored (additive changes only).
//
// Threads: HolderMap is a plain value; its owner guards it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/result.h"

namespace omnibus::daemon {

struct InstanceRecord {
    std::string instance;         // the record's key
    std::string admin_url;        // where its admin API answers: http(s)://host:port
    std::vector<int> partitions;  // history partitions it holds, ascending
    std::int64_t at_ms = 0;       // when it wrote the record (informational: order is the log's)
};

// True for "http://host:port" and "https://host:port" and nothing more: no user info, path,
// query or fragment. host is a DNS name, an IPv4 address or a bracketed IPv6 address; port is
// 1-65535. The only URLs a request is ever forwarded to.
bool is_admin_url(std::string_view url);

// True for an instance id: 1 to 128 of [A-Za-z0-9._:-] (what instance_origin() makes).
bool is_instance_id(std::string_view id);

std::string encode(const InstanceRecord& r);

// Reads a record's value (never throws, bounded). Fails on anything that is not exactly the
// format above: not JSON or too large, missing or mistyped members, an instance that is not
// the key, a URL is_admin_url refuses, a partition outside [0, partition_count), a bad time.
envelope::Result<InstanceRecord> decode_instance_record(std::string_view key, std::string_view value,
                                                        int partition_count);

struct Holder {
    std::string instance;
    std::string admin_url;
    friend bool operator==(const Holder&, const Holder&) = default;
};

// What the log says now: each instance's newest record. When two instances claim the same
// partition (during a rebalance the new holder may announce before the old one's revocation
// is read), the claim written later to the log (higher offset) wins: the log's order, not
// the instances' clocks.
class HolderMap {
public:
    // The instance's record at `offset` replaces what it said before.
    void apply(InstanceRecord record, std::int64_t offset);
    // The instance left (tombstone) or wrote something unreadable: it holds nothing known.
    void remove(std::string_view instance);
    void clear() { by_instance_.clear(); }

    // The instance holding `partition`, nullopt when none claims it.
    std::optional<Holder> holder(int partition) const;

    // Instances whose record is left over: written (its `at`) more than `grace_ms` before
    // `now_ms`, and every partition it claims is claimed by a later record of another instance
    // (or it claims none). A live instance announces at every change of what it holds, so a
    // record like that outlives only an instance that ended without its tombstone (SIGKILL, a
    // crash, a lost machine); after the tombstone of the instance that took its partitions it
    // would otherwise name the dead one as their holder again. `own` is never among them.
    std::vector<std::string> stale(std::string_view own, std::int64_t now_ms, std::int64_t grace_ms) const;
    std::size_t size() const { return by_instance_.size(); }

    // One record of the log, as the directory reads it: a tombstone removes the instance; a
    // readable record replaces its earlier one; anything else (hostile or broken input) removes
    // the instance too (unknown beats stale), is logged as a warning and returns false. A record
    // of another instance advertising `own_url` (two instances given the same admin.advertise,
    // or the default loopback URL on two machines) is refused the same way: forwarding there
    // would reach this instance, not the holder.
    bool read(std::string_view key, std::string_view value, bool tombstone, std::int64_t offset, int partition_count,
              std::string_view own_instance, std::string_view own_url);

private:
    struct Entry {
        InstanceRecord record;
        std::int64_t offset = 0;
    };
    std::map<std::string, Entry, std::less<>> by_instance_;
};

}  // namespace omnibus::daemon
