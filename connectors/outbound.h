// What the delivery dispatcher hands a channel: one reply from
// <prefix>delivery addressed to it, decoded, with the completion that lets
// the consumer store its offset (kafka/consumer.h, asynchronous mode).
//
// The channel calls exactly one of done.done() (the reply was delivered,
// dead-lettered or rerouted, and whatever it produced is on Kafka) or
// done.abandon() (not handled here: the next owner of the partition gets it).
#pragma once

#include "envelope/envelope.h"
#include "kafka/consumer.h"

namespace omnibus::connectors {

struct OutboundJob {
    kafka::ConsumedRecord record;  // as consumed: dead-lettered as is
    envelope::Envelope message;    // decoded from it; direction outbound, channel.name = the channel
    kafka::Completion done;
};

}  // namespace omnibus::connectors
