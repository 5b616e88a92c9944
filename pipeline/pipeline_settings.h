// PipelineSettings: what the `pipeline:` block of the YAML fills in for the pipeline stages
// (identity resolution, conversation history). Declared in daemon/daemon_config.cpp, read by
// the daemon and handed to the stages; defaults here are the documented defaults.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace omnibus::pipeline {

struct IdentitySettings {
    // Identity kinds a message may link to its sender's customer automatically, when the
    // platform or a verified claim shows them (never display names, never unverified text).
    std::vector<std::string> auto_link{"phone", "email", "shop"};
    bool email_lowercase_local_part = false;  // RFC 5321: the local part is case-sensitive
    bool email_fold_gmail = false;            // gmail.com / googlemail.com: drop dots and +tags
    // Region (ISO 3166-1 alpha-2) for phone numbers in claims written without '+': per channel
    // name, else `default_region`; "" = such claims are left out (a national number read in no
    // region could name people in different countries), never guessed.
    std::string default_region;
    std::map<std::string, std::string> channel_regions;
    // A store last written longer ago than this is rebuilt from the identity log (the topic
    // keeps every record for min.compaction.lag.ms = 7 days).
    std::chrono::milliseconds rebuild_after{std::chrono::hours(24 * 6)};
};

struct HistorySettings {
    // A conversation closes after this long without a message; the next one opens a new one.
    std::chrono::milliseconds conversation_idle{std::chrono::minutes(30)};
    // The `context` of an emitted message: the customer's last N messages, within a byte budget
    // (text bytes; older entries are dropped first).
    std::size_t context_messages = 20;
    std::size_t context_bytes = 16384;
    // Memory for the newest entries and the state of recently active customers, shared by the
    // instance's history stores (pipeline/history/tail_cache.h); 0: every read goes to RocksDB.
    std::size_t cache_bytes = 64u << 20;
    // Messages older than this are purged from the history (and its changelog).
    std::chrono::milliseconds retention{std::chrono::hours(24 * 365)};
};

struct PipelineSettings {
    bool enabled = true;
    // The stages' producer's linger (kafka.linger_ms stays the edge's): batching for throughput.
    std::chrono::microseconds producer_linger{5000};
    // Kafka transactions for the conversation stage (docs/pipeline.md): on, off, or auto (on
    // unless kafka.embedded, whose mock cluster does not implement them; off, with a warning,
    // when the cluster refuses them).
    enum class Transactions { automatic, on, off };
    Transactions transactions = Transactions::automatic;
    // How often a transaction is committed: the latest a routed message becomes visible.
    std::chrono::milliseconds transaction_interval{100};
    IdentitySettings identity;
    HistorySettings history;
    // The routing rules file as configured (pipeline.routing.rules_file; relative to the config
    // file, resolved by the daemon); empty: the built-in rules.
    std::string routing_rules_file;
    // The classification rules file (pipeline.classify.rules_file); empty: the built-in rules.
    std::string classify_rules_file;
};

}  // namespace omnibus::pipeline
