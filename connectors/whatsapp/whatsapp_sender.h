// The WhatsApp channel's outbound I/O shell: delivers reply envelopes from
// omnibus.delivery through the Graph API messages endpoint.
//
// For each reply (a Job, with its Kafka completion):
//   1. plan() turns it into Graph API requests (whatsapp_outbound.h); a reply
//      that cannot be sent on WhatsApp goes to <prefix>deadletter at once.
//   2. The 24-hour window: when it is closed (or unknown and the channel
//      treats unknown as closed) the free-form reply is not sent. With a
//      closed_window_template the template is sent instead; without one the
//      reply goes to <prefix>outbox.human with route.target human and the
//      flag window_closed. Either way a `window_closed` status event says so.
//   3. Requests go out in order per recipient (one lane per wa_id: a
//      customer's messages never overtake each other, also across retries),
//      concurrently across recipients, at most rate_limit per second for the
//      phone number (token bucket, burst of one second).
//   4. 429/5xx/timeouts and retryable Graph errors are retried after
//      retry_delay() (exponential, jittered, at least Retry-After) up to
//      max_retries; the lane waits meanwhile. Permanent errors and exhausted
//      retries send the original record to <prefix>deadletter with the reason
//      in headers (omnibus_error, omnibus_error_code, omnibus_failure,
//      omnibus_channel, omnibus_graph_code) and a `failed` status event.
//   5. Each accepted message gives an `accepted` status event (message_id =
//      the wamid, callback_data = the envelope id): the link that later
//      sent/delivered/read webhooks, which echo the callback data, are
//      matched with.
//   6. The job's completion is called (done) once every record it produced
//      (statuses, dead letter, human outbox) is acknowledged by Kafka; records
//      Kafka refuses are produced again until it takes them. So a crash at
//      any point redelivers the reply rather than losing it; the cost is a
//      possible second send of a message that was accepted just before.
//
// release(partitions) (a rebalance took them) and stop() abandon the jobs of
// those partitions that are not on the wire, so the next owner delivers them;
// jobs on the wire finish (bounded by request_timeout).
//
// Threads: submit() and release() run on the delivery consumer's thread; HTTP
// answers arrive on the HTTP client's thread and Kafka acknowledgements on the
// producer's; one scheduler thread sends what is due. One mutex guards the
// lanes; no callback runs under it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/secret.h"
#include "connectors/outbound.h"
#include "envelope/envelope.h"
#include "kafka/consumer.h"
#include "kafka/settings.h"

namespace omnibus::http {
class Client;
}
namespace omnibus::kafka {
class Producer;
}
namespace omnibus::metrics {
class Registry;
}

namespace omnibus::connectors::whatsapp {

class DedupStore;

struct SenderOptions {
    std::string channel;        // the channel's name
    std::string messages_url;   // <graph_api_url>/<version>/<phone_number_id>/messages
    Secret access_token;
    int rate_limit = 80;        // messages per second for the phone number
    int max_retries = 5;
    std::chrono::milliseconds retry_backoff{1000};
    std::chrono::milliseconds retry_backoff_max{60000};
    std::chrono::milliseconds request_timeout{10000};
    std::optional<std::string> template_name;  // closed_window_template, both or neither
    std::optional<std::string> template_language;
    bool unknown_window_open = false;          // window_unknown: open
    std::string events_topic;
    std::string deadletter_topic;
    std::string human_outbox_topic;
    std::function<std::int64_t()> now_ms;      // wall clock, ms since the epoch; default system_clock
    std::function<double()> jitter;            // [0, 1); default a per-sender PRNG
};

// The key under which the channel's DedupStore keeps a customer's window expiry.
std::string window_key(std::string_view wa_id);

using connectors::OutboundJob;

class Sender {
public:
    // `http`, `producer`, `windows` and `metrics` must outlive the Sender.
    Sender(SenderOptions options, http::Client& http, kafka::Producer& producer, DedupStore& windows,
           metrics::Registry& metrics);
    ~Sender();  // stop()
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;

    void submit(OutboundJob job);  // never blocks
    void release(const std::vector<kafka::TopicPartition>& partitions);
    // Abandons what is not on the wire, waits up to `budget` for the rest, then
    // abandons what is still open. Idempotent.
    void stop(std::chrono::milliseconds budget);

    std::size_t queued() const;  // jobs accepted and not yet completed

    struct State;  // defined in the .cpp

private:
    std::shared_ptr<State> state_;
};

}  // namespace omnibus::connectors::whatsapp
