// ConversationStage: the pipeline stage that keeps each customer's history and emits each
// message with its customer, conversation and context. It consumes <prefix>pipeline.customer
// (messages keyed by customer id, written by the resolve stage) in the consumer group
// <group_id>.conversation, with one HistoryStore per assigned partition, each mirrored on the
// same partition of <prefix>changelog.history.
//
// Per message, in the partition's order:
//   1. The key names the customer. When the identity state says that customer was merged into
//      another, the record is forwarded to the survivor's key (and history follows it there).
//      When the customer has aliases whose history it has not asked for yet, it asks now: a
//      history.move command keyed by the alias (history_commands.h), whose owner sends the
//      alias's entries over as history.import records and deletes them. Asked once per alias
//      (a marker in the store, on the changelog too); the requester of a merge may also send
//      the move at once, which is harmless (a second move finds nothing left).
//   2. The message's history key is a function of the message; when the store already has it,
//      the message was processed and emitted before: nothing is done again (reprocessing
//      after a crash neither duplicates history nor emits a second routed message).
//   3. Conversation: the customer's newest entry's conversation when it is at most
//      history.conversation_idle older than this message, else a new one.
//   4. Context: the customer's last history.context_messages entries before it, within
//      history.context_bytes, across every channel.
//   5. The entry goes into the local store at once (the next message of the customer sees
//      it), the routed message is produced to the outbox; only after Kafka acknowledged it
//      is the entry produced to the changelog, and only after that is the record done (its
//      offset may be committed). So an entry on the changelog always means its message was
//      emitted: the next owner of the partition, restored from the changelog, skips it. A
//      message whose output was acknowledged but whose changelog record was not (a crash in
//      between) is emitted again by the next owner, with the same id: downstream sees at
//      worst a duplicate it can drop by id, never a second message with a new id.
//      With a transactional producer (ConversationStageOptions::transactional_producer) the
//      outputs, changelog records and input offsets are committed together in Kafka
//      transactions, which closes that gap for read_committed readers (and the output and
//      its changelog records are produced at once: the order between them no longer matters); an aborted transaction
//      rebuilds the partitions' stores from the changelog (read_committed: what was committed)
//      and hands their records out again. Without one (the embedded cluster does not implement
//      transactions: docs/pipeline.md) the deduplication above is what holds.
//   6. Output failures: the local entry is removed again and the record abandoned (handed
//      out again after the consumer's retry backoff, or to the next owner).
//
// Routing is not decided here yet: every message goes to <prefix>outbox.ai with the route
// {target: ai, rule: "default"} until the classify and route stages exist.
//
// Restore (on assignment, before any record of the partition is handled): a store with a
// checkpoint reads the changelog from there; one without (new, or not closed cleanly) is
// wiped and rebuilt from the changelog's beginning. On revocation the stage waits for the
// partition's work in flight, writes the checkpoint and closes the store.
//
// Commands (history_commands.h) are handled in order with the customer's messages: move
// (send the entries to the survivor, then tombstone them), import (store them under the
// survivor), erase (delete and tombstone the customer's history). Each is done only when
// everything it produced was acknowledged.
//
// Retention: a purge pass every purge_interval removes entries older than history.retention
// from every open store and tombstones them on the changelog.
//
// Threads: the consumer thread runs the handler and the assignment hooks and is the only
// writer of message entries; producer acknowledgements arrive on the producer's poll thread
// and touch only the partition's atomics and the store (thread-safe); the purge thread
// writes tombstones; admin reads (messages, conversations) come from admin threads. The map
// of open stores is guarded by stores_mu_; each store lives in a shared_ptr so work in flight
// keeps it alive past a revocation.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kafka/consumer.h"
#include "kafka/producer.h"
#include "kafka/settings.h"
#include "metrics/metrics.h"
#include "pipeline/history/history_store.h"
#include "pipeline/history/tail_cache.h"
#include "pipeline/pipeline_settings.h"
#include "pipeline/route/router.h"

namespace omnibus::pipeline::history {

struct CustomerRef {
    std::string id;                    // the survivor
    std::vector<std::string> aliases;  // customers merged into it
    route::CustomerAttributes attributes;  // the survivor's (PATCH /v1/customers/<id>/attributes)
};

struct ConversationStageOptions {
    std::string group_id;    // the consumer group, e.g. "omnibus.conversation"
    std::string input_topic;      // <prefix>pipeline.customer
    std::string changelog_topic;  // <prefix>changelog.history
    std::string outbox_topic;     // <prefix>outbox.ai
    std::string human_outbox_topic;  // <prefix>outbox.human
    std::string delivery_topic;   // <prefix>delivery: replies, once appended, for the connectors
    std::string deadletter_topic; // <prefix>deadletter
    std::string store_dir;        // one store per partition under it: <store_dir>/<partition>
    HistorySettings history;
    // What the identity state says of a customer id now (any thread): the survivor it stands
    // for (itself unless merged) and the survivor's aliases; nullopt when it does not know
    // the id (yet, or any more: then the record's key is taken as it is).
    std::function<std::optional<CustomerRef>(std::string_view customer)> customer;
    // The routing rules (route/router.h); null: the built-in rules (config/routing.yaml).
    std::shared_ptr<const route::Router> router;
    // Classification (consumer thread): sets language, language_confidence, intent, entities
    // and sentiment on an inbound envelope; `previous_language` is the customer's last
    // detected one ("" when none). Unset: messages are routed unclassified.
    std::function<void(envelope::Envelope& env, const std::string& previous_language)> classify;
    // ce_source of the commands this stage writes, e.g. "/omnibus/instances/host:42".
    std::string source = "/omnibus/pipeline";
    std::chrono::milliseconds purge_interval{std::chrono::hours(1)};
    std::chrono::milliseconds restore_timeout{std::chrono::seconds(60)};
    std::size_t max_in_flight = 20000;
    // Consumer thread, after each assignment change: the partitions this instance now holds
    // (assigned and restored, ascending), e.g. to tell other instances (daemon/instance_directory.h).
    // Also at stop(), with what is left (nothing). Unset: nobody is told.
    std::function<void(std::vector<int> held)> on_partitions_changed;
    // Partitions of input_topic (kafka.partitions: the topic is created with exactly that many),
    // to tell which partition holds a customer.
    int partition_count = 1;
    // Kafka transactions (see the top): a transactional Producer whose init_transactions()
    // succeeded, used for everything the records produce (outputs, changelog, forwards, dead
    // letters); the stage's other writes (erase and move commands, retention tombstones) go
    // through the plain producer. Null: no transactions. Must outlive the stage.
    kafka::Producer* transactional_producer = nullptr;
    std::chrono::milliseconds transaction_interval{100};
};

class ConversationStage {
public:
    // Starts consuming at once. References must outlive the stage.
    ConversationStage(const kafka::KafkaSettings& settings, ConversationStageOptions options, kafka::Producer& producer,
                      metrics::Registry& metrics);
    ~ConversationStage();  // stop()
    ConversationStage(const ConversationStage&) = delete;
    ConversationStage& operator=(const ConversationStage&) = delete;

    // Revokes everything (checkpoints written), leaves the group. Idempotent.
    void stop();

    bool has_assignment() const;
    // The stage stopped for good: its transactional producer was fenced (another instance took
    // its transactional id) or failed; the instance must be restarted.
    bool failed() const;
    std::vector<int> partitions() const;  // assigned and restored here

    // Admin reads. nullopt: no store here holds that customer (unknown, or its partition is
    // assigned to another instance).
    std::optional<MessagePage> messages(std::string_view customer, const MessageQuery& q) const;
    std::optional<std::vector<ConversationSummary>> conversations(std::string_view customer) const;

    // The partition of input_topic that holds `customer`'s history (the producer's partitioner
    // over the key), and whether this instance has it assigned and restored.
    int partition_of(std::string_view customer) const;
    bool holds_partition(int partition) const;

    // Puts a history.erase command for each customer on input_topic and waits (bounded) until
    // Kafka acknowledged all of them: then every history of theirs will be deleted by its
    // owner, in order after the messages before it. False when not all were acknowledged.
    bool erase_history(const std::vector<std::string>& customers, std::chrono::milliseconds wait);

    // Puts a history.move command for `from` (merged into `into`) on input_topic, without
    // waiting: the requester of a merge sends it so the history moves at once; if it is lost,
    // the survivor's next message asks again.
    void move_history(const std::string& from, const std::string& into);

    // One purge pass now (tests; the purge thread does the same every purge_interval).
    std::size_t purge_now();

    struct Partition;  // conversation_stage.cpp

private:
    void on_record(const kafka::ConsumedRecord& rec, kafka::Completion done);  // consumer thread
    void on_assigned(const std::vector<kafka::TopicPartition>& parts);           // consumer thread
    void on_revoked(const std::vector<kafka::TopicPartition>& parts);            // consumer thread
    void on_aborted(const std::vector<kafka::TopicPartition>& parts);            // consumer thread
    // Closes the partitions' stores, with a checkpoint when `checkpoint` and their work is done.
    void close_partitions(const std::vector<kafka::TopicPartition>& parts, bool checkpoint);
    std::shared_ptr<Partition> partition(int p) const;
    std::vector<std::shared_ptr<Partition>> open_partitions() const;  // a snapshot of stores_
    // The store among `parts` that holds `customer`'s history, or nullptr.
    const HistoryStore* store_holding(std::string_view customer,
                                      const std::vector<std::shared_ptr<Partition>>& parts) const;
    void purge_loop();
    // Handlers of the command types; consumer thread.
    void on_move(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                 std::shared_ptr<kafka::Completion> done);
    void on_import(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                   std::shared_ptr<kafka::Completion> done);
    void on_erase(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                  std::shared_ptr<kafka::Completion> done);
    void on_reply(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part, envelope::Envelope env,
                  std::shared_ptr<kafka::Completion> done);
    // Produces `out`; once acknowledged, the change and markers to the changelog; once those
    // are acknowledged, `processed` (may be null) counts and the record is done. A failure
    // removes the change and markers from the store again and abandons the record.
    // `restore`: earlier values (or tombstones) of overwritten keys among the markers.
    void emit_then_log(const std::shared_ptr<Partition>& part, std::vector<kafka::Record> out,
                       std::optional<Change> change, std::vector<Change> markers, std::vector<Change> restore,
                       metrics::Counter* processed, std::shared_ptr<kafka::Completion> done);
    void on_handoff(const kafka::ConsumedRecord& rec, const std::shared_ptr<Partition>& part,
                    std::shared_ptr<kafka::Completion> done);
    void dead_letter(const kafka::ConsumedRecord& rec, std::string_view code, std::string reason,
                     std::shared_ptr<kafka::Completion> done);
    // Produces every record (changelog ones with the partition set); `then(true)` once all
    // were acknowledged, `then(false)` once all returned and one failed. Counted in flight.
    void produce_all(std::vector<kafka::Record> records, const std::shared_ptr<Partition>& part,
                     std::function<void(bool ok)> then);
    kafka::Record changelog_record(Change c, int partition) const;

    kafka::KafkaSettings settings_;
    ConversationStageOptions options_;
    kafka::Producer& producer_;  // commands and retention tombstones
    kafka::Producer& out_;       // what records produce: the transactional producer, if any
    metrics::Registry& metrics_;
    metrics::Counter* processed_;
    metrics::Counter* replies_;
    metrics::Counter* routed_ai_;
    metrics::Counter* routed_human_;
    metrics::Counter* handoffs_;
    metrics::Counter* duplicates_;
    metrics::Counter* forwarded_;
    metrics::Counter* dead_letters_;
    metrics::Counter* output_failures_;
    metrics::Counter* restored_;
    metrics::Counter* purged_;
    metrics::Counter* moved_;
    metrics::Counter* imported_;
    metrics::Counter* erased_;
    std::shared_ptr<TailCache> cache_;  // shared by the stores; null when history.cache_bytes is 0

    mutable std::mutex stores_mu_;
    std::map<int, std::shared_ptr<Partition>> stores_;  // guarded by stores_mu_

    std::mutex purge_mu_;  // with purge_cv_: wakes the purge thread to stop
    std::condition_variable purge_cv_;
    bool stopping_ = false;  // guarded by purge_mu_
    std::thread purge_thread_;

    std::unique_ptr<kafka::Consumer> consumer_;  // last: stopped first
};

}  // namespace omnibus::pipeline::history
