// Commands on <prefix>pipeline.customer that move or remove history, besides the messages
// themselves. They travel on the same topic as the messages, keyed by the customer they act
// on, so each is handled by the owner of that customer's history, in order with that
// customer's messages.
//
//   com.omnibus.history.move    key = the alias. Body {"from": alias, "into": survivor}. The
//                               owner sends every entry of `from` to `into` (import records),
//                               then deletes them. After a merge, so the survivor's history
//                               holds both.
//   com.omnibus.history.import  key = the survivor. Body {"customer": survivor, "from": alias,
//                               "entries": [...]}: entries in the history's own encoding plus
//                               their time and id. The owner stores them under the survivor
//                               (idempotent: same keys).
//   com.omnibus.history.erase   key = the customer. Body {"customer": id}. The owner deletes
//                               the customer's history and tombstones it on the changelog.
//   com.omnibus.conversation.takeover / .release
//                               key = the customer. Body {"customer_id", "agent",
//                               "conversation_id"?}: a human agent takes the customer's
//                               conversation over, or hands it back (reply_intake.h; written
//                               by the helpdesk on <prefix>replies, re-keyed by the intake).
//
// Pure: encoding and decoding only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "envelope/result.h"
#include "kafka/record.h"
#include "pipeline/history/history_store.h"

namespace omnibus::pipeline::history {

inline constexpr std::string_view kMoveType = "com.omnibus.history.move";
inline constexpr std::string_view kImportType = "com.omnibus.history.import";
inline constexpr std::string_view kEraseType = "com.omnibus.history.erase";
inline constexpr std::string_view kTakeoverType = "com.omnibus.conversation.takeover";
inline constexpr std::string_view kReleaseType = "com.omnibus.conversation.release";

// Import records stay below Kafka's default 1 MB message size.
inline constexpr std::size_t kMaxImportBytes = 512 * 1024;

struct MoveCommand {
    std::string from;
    std::string into;
};
struct ImportCommand {
    std::string customer;
    std::string from;
    std::vector<HistoryEntry> entries;  // customer set to `customer`
};
struct EraseCommand {
    std::string customer;
};
struct HandoffCommand {
    bool takeover = true;  // false: release
    std::string customer;
    std::string agent;  // the helpdesk's agent id
    std::optional<std::string> conversation;
};

// Records for `topic`, as CloudEvents from `source` (e.g. "/omnibus/instances/<origin>").
kafka::Record move_record(const std::string& topic, const MoveCommand& c, std::string_view source);
kafka::Record erase_record(const std::string& topic, const EraseCommand& c, std::string_view source);
// The entries of `from` as import records for `into`, each below kMaxImportBytes.
std::vector<kafka::Record> import_records(const std::string& topic, std::string_view from, std::string_view into,
                                          const std::vector<HistoryEntry>& entries, std::string_view source);

envelope::Result<MoveCommand> decode_move(std::string_view body);
envelope::Result<ImportCommand> decode_import(std::string_view body);
envelope::Result<EraseCommand> decode_erase(std::string_view body);
// `takeover` from the record's ce_type.
envelope::Result<HandoffCommand> decode_handoff(std::string_view body, bool takeover);
kafka::Record handoff_record(const std::string& topic, const HandoffCommand& c, std::string_view source);

}  // namespace omnibus::pipeline::history
