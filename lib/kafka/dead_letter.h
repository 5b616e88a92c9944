// The one shape of a dead letter: the record as it came, plus why it could not be processed
// and where it was read. Every consumer that gives a record up sends this to
// <prefix>deadletter (docs/envelope.md, "Dead letters").
#pragma once

#include <string>
#include <string_view>

#include "kafka/consumer.h"
#include "kafka/record.h"

namespace omnibus::kafka {

// Headers added: omnibus_error (human text), omnibus_error_code (a short stable code),
// omnibus_source_topic, omnibus_source_partition, omnibus_source_offset.
inline Record dead_letter(const ConsumedRecord& in, std::string topic, std::string_view code, std::string reason) {
    Record rec = in.record;
    rec.topic = std::move(topic);
    rec.partition = -1;
    rec.headers.push_back({"omnibus_error", std::move(reason)});
    rec.headers.push_back({"omnibus_error_code", std::string(code)});
    rec.headers.push_back({"omnibus_source_topic", in.record.topic});
    rec.headers.push_back({"omnibus_source_partition", std::to_string(in.partition)});
    rec.headers.push_back({"omnibus_source_offset", std::to_string(in.offset)});
    return rec;
}

}  // namespace omnibus::kafka
