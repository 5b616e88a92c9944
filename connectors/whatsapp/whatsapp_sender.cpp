// Delivers reply envelopes through the Graph API (see whatsapp_sender.h).
#include "connectors/whatsapp/whatsapp_sender.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "connectors/whatsapp/dedup_store.h"
#include "connectors/whatsapp/delivery_status.h"
#include "connectors/whatsapp/whatsapp_codec.h"
#include "connectors/whatsapp/whatsapp_graph.h"
#include "connectors/whatsapp/whatsapp_outbound.h"
#include "http/client.h"
#include "http/retry_after.h"
#include "kafka/producer.h"
#include "log/log.h"
#include "metrics/metrics.h"

namespace omnibus::connectors::whatsapp {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const log::Logger logger{"whatsapp"};
log::Throttle log_record_refused;  // per record while Kafka is out

// A record Kafka refused (after librdkafka's own retries for message_timeout)
// is produced again after this long, until it is taken or the sender stops.
constexpr auto kReproduceDelay = 1s;
// Graph API error code for a free-form message outside the service window.
constexpr std::int64_t kReengagementCode = 131047;

std::int64_t system_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

envelope::Timestamp timestamp_of(std::int64_t ms) { return envelope::Timestamp(std::chrono::milliseconds(ms)); }

}  // namespace

std::string window_key(std::string_view wa_id) { return "w\x1f" + std::string(wa_id); }

namespace {

enum class WindowAction : std::uint8_t { none, template_sent };

struct Job {
    OutboundJob in;
    std::string lane;  // the recipient's wa_id
    std::vector<std::string> requests;
    std::size_t next = 0;      // the request to send next
    int attempt = 0;           // retries of the current request so far
    WindowAction window = WindowAction::none;
    std::vector<std::string> wamids;
    // Records still to be acknowledged before the completion runs.
    int records_left = 0;
    bool essential_failed = false;  // a dead letter / outbox record never got in (stopping)
    // Its partition was revoked while its request was on the wire: a retryable failure gives
    // it back to Kafka (the next owner sends it) instead of waiting here for a retry.
    bool released = false;
};
using JobPtr = std::shared_ptr<Job>;

struct Lane {
    std::deque<JobPtr> jobs;
    bool on_wire = false;  // the head's request is being sent
    bool waiting = false;  // the head waits for a retry
    std::uint64_t wait_seq = 0;
};

struct Failure {
    FailureKind kind = FailureKind::unknown;
    std::string code;     // omnibus_error_code: the Graph code, or "timeout"/"transport"/…
    std::string message;  // omnibus_error
    std::optional<std::int64_t> graph_code;
    int http_status = 0;
};

}  // namespace

struct Sender::State : std::enable_shared_from_this<Sender::State> {
    State(SenderOptions o, http::Client& h, kafka::Producer& p, DedupStore& w, metrics::Registry& m);

    // All under mu unless named *_unlocked.
    void run();
    void add_to_lane(const JobPtr& job);
    void make_runnable(const std::string& lane, bool front);
    void answered(const JobPtr& job, const http::ClientResponse& resp);
    void finish_accepted(const JobPtr& job);
    void finish_failed(const JobPtr& job, const Failure& f);
    void route_to_human(const JobPtr& job);
    void produce_all(const JobPtr& job, std::vector<std::pair<kafka::Record, bool>> records);
    void produce_one(const JobPtr& job, kafka::Record rec, bool essential);
    void record_settled(const JobPtr& job, bool ok_or_nonessential);
    kafka::Record status_record(const Job& job, std::string message_id, std::string status,
                                std::vector<DeliveryError> errors) const;
    kafka::Record dead_letter(const Job& job, const Failure& f) const;

    const SenderOptions options;
    http::Client& http;
    kafka::Producer& producer;
    DedupStore& windows;
    std::string authorization;

    metrics::Counter* sent;
    metrics::Counter* retries;
    metrics::Counter* window_template;
    metrics::Counter* window_human;
    metrics::Registry& metrics;
    metrics::Histogram* latency;

    mutable std::mutex mu;
    std::condition_variable cv;
    std::unordered_map<std::string, Lane> lanes;
    std::deque<std::string> runnable;
    std::multimap<Clock::time_point, std::pair<std::string, std::uint64_t>> timers;
    std::multimap<Clock::time_point, std::pair<JobPtr, std::pair<kafka::Record, bool>>> reproduce;
    double tokens = 0;
    Clock::time_point refilled = Clock::now();
    std::size_t open_jobs = 0;  // submitted, completion not yet called
    std::size_t on_wire = 0;
    std::uint64_t wait_counter = 0;
    bool stopping = false;
    bool quit = false;
    std::mt19937_64 rng{std::random_device{}()};
    std::thread scheduler;
};

Sender::State::State(SenderOptions o, http::Client& h, kafka::Producer& p, DedupStore& w, metrics::Registry& m)
    : options(std::move(o)), http(h), producer(p), windows(w), metrics(m) {
    authorization = "Bearer " + options.access_token.reveal();
    const metrics::Labels ch{{"channel", options.channel}};
    sent = &m.counter("omnibus_channel_messages_out_total", "Outbound messages the platform accepted", ch);
    retries = &m.counter("omnibus_channel_send_retries_total",
                         "Outbound requests retried after a retryable failure", ch);
    window_template = &m.counter("omnibus_channel_window_closed_total",
                                 "Replies not sent free-form because the customer service window was closed",
                                 {{"channel", options.channel}, {"action", "template"}});
    window_human = &m.counter("omnibus_channel_window_closed_total",
                              "Replies not sent free-form because the customer service window was closed",
                              {{"channel", options.channel}, {"action", "human_outbox"}});
    latency = &m.histogram("omnibus_channel_send_seconds", "Time of one outbound platform request",
                           {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}, ch);
    tokens = options.rate_limit;
}

void Sender::State::make_runnable(const std::string& lane, bool front) {
    if (front) runnable.push_front(lane);
    else runnable.push_back(lane);
    cv.notify_one();
}

void Sender::State::add_to_lane(const JobPtr& job) {
    Lane& l = lanes[job->lane];
    l.jobs.push_back(job);
    if (l.jobs.size() == 1) make_runnable(job->lane, false);
}

void Sender::State::run() {
    std::unique_lock lock(mu);
    std::vector<std::pair<http::ClientRequest, JobPtr>> sends;
    std::vector<std::pair<JobPtr, std::pair<kafka::Record, bool>>> again;
    const double rate = options.rate_limit;
    while (!quit) {
        const auto now = Clock::now();
        tokens = std::min(rate, tokens + std::chrono::duration<double>(now - refilled).count() * rate);
        refilled = now;
        while (!timers.empty() && timers.begin()->first <= now) {
            auto [lane, seq] = timers.begin()->second;
            timers.erase(timers.begin());
            auto it = lanes.find(lane);
            if (it == lanes.end() || !it->second.waiting || it->second.wait_seq != seq) continue;
            it->second.waiting = false;
            runnable.push_back(lane);
        }
        while (!reproduce.empty() && reproduce.begin()->first <= now) {
            again.push_back(std::move(reproduce.begin()->second));
            reproduce.erase(reproduce.begin());
        }
        while (!runnable.empty() && tokens >= 1 && !stopping) {
            const std::string name = std::move(runnable.front());
            runnable.pop_front();
            auto it = lanes.find(name);
            if (it == lanes.end() || it->second.jobs.empty() || it->second.on_wire || it->second.waiting) continue;
            tokens -= 1;
            it->second.on_wire = true;
            ++on_wire;
            const JobPtr& job = it->second.jobs.front();
            http::ClientRequest req;
            req.method = "POST";
            req.url = options.messages_url;
            req.headers = {{"Authorization", authorization}, {"Content-Type", "application/json"}};
            req.body = job->requests[job->next];
            req.timeout = options.request_timeout;
            sends.emplace_back(std::move(req), job);
        }
        if (!sends.empty() || !again.empty()) {
            lock.unlock();
            auto self = shared_from_this();
            for (auto& [req, job] : sends)
                http.send(std::move(req), [self, job](http::ClientResponse resp) { self->answered(job, resp); });
            for (auto& [job, rec] : again) produce_one(job, std::move(rec.first), rec.second);
            sends.clear();
            again.clear();
            lock.lock();
            continue;
        }
        auto wake = Clock::time_point::max();
        if (!runnable.empty() && !stopping)
            wake = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((1 - tokens) / rate));
        if (!timers.empty()) wake = std::min(wake, timers.begin()->first);
        if (!reproduce.empty()) wake = std::min(wake, reproduce.begin()->first);
        if (wake == Clock::time_point::max()) cv.wait(lock);
        else cv.wait_until(lock, wake);
    }
}

void Sender::State::answered(const JobPtr& job, const http::ClientResponse& resp) {
    latency->observe(std::chrono::duration<double>(resp.elapsed).count());
    Failure f;
    std::optional<std::string> wamid;
    std::optional<std::chrono::seconds> retry_after;
    if (resp.status == 0) {
        f.kind = FailureKind::transient;
        f.code = resp.timed_out ? "timeout" : "transport";
        f.message = resp.timed_out ? "Graph API request timed out" : "Graph API unreachable: " + resp.error;
    } else {
        SendResponse r = parse_send_response(resp.status, resp.body);
        if (auto* ok = std::get_if<SendAccepted>(&r)) {
            wamid = ok->message_id;
        } else {
            const GraphError& e = std::get<GraphError>(r);
            f.kind = e.kind;
            f.graph_code = e.code;
            f.http_status = resp.status;
            f.code = std::to_string(e.code);
            f.message = "Graph API " + std::to_string(resp.status) + ": " + e.message;
            if (auto h = resp.header("retry-after"))
                retry_after = http::parse_retry_after(*h, std::chrono::system_clock::now());
        }
    }

    enum class Next { nothing, accepted, failed, human, abandon } next = Next::nothing;
    {
        std::lock_guard lock(mu);
        --on_wire;
        Lane& lane = lanes[job->lane];
        lane.on_wire = false;
        const auto pop = [&] {
            lane.jobs.pop_front();
            if (lane.jobs.empty()) lanes.erase(job->lane);
            else make_runnable(job->lane, false);
        };
        if (wamid) {
            sent->inc();
            job->wamids.push_back(std::move(*wamid));
            job->attempt = 0;
            if (++job->next < job->requests.size()) {
                make_runnable(job->lane, true);  // its next part, before other lanes' waiting work
            } else {
                pop();
                next = Next::accepted;
            }
        } else if ((stopping || job->released) && is_retryable(f.kind)) {
            pop();
            next = Next::abandon;
        } else if (is_retryable(f.kind) && job->attempt < options.max_retries) {
            ++job->attempt;
            retries->inc();
            const double j = options.jitter ? options.jitter() : std::uniform_real_distribution<double>(0, 1)(rng);
            const auto delay =
                retry_delay(job->attempt, options.retry_backoff, options.retry_backoff_max, retry_after, j);
            lane.waiting = true;
            lane.wait_seq = ++wait_counter;  // unique across lanes that come and go
            timers.emplace(Clock::now() + delay, std::make_pair(job->lane, lane.wait_seq));
            cv.notify_one();
            logger.debug("outbound request will be retried",
                         {{"channel", options.channel}, {"attempt", job->attempt}, {"delay_ms", delay.count()},
                          {"error", f.message}});
        } else if (f.kind == FailureKind::window_closed && !options.template_name && job->next == 0) {
            pop();
            next = Next::human;
        } else if (f.kind == FailureKind::window_closed && options.template_name &&
                   job->window == WindowAction::none && job->next == 0) {
            Result<std::string> t = plan_template(job->lane, *options.template_name, *options.template_language,
                                                  job->in.message.id);
            if (t) {
                job->requests = {std::move(*t)};
                job->attempt = 0;
                job->window = WindowAction::template_sent;
                window_template->inc();
                make_runnable(job->lane, true);
            } else {
                pop();
                f.message += "; closed_window_template: " + t.error().to_string();
                next = Next::failed;
            }
        } else {
            if (is_retryable(f.kind))
                f.message = "gave up after " + std::to_string(job->attempt) + " retries: " + f.message;
            pop();
            next = Next::failed;
        }
    }
    switch (next) {
        case Next::accepted: finish_accepted(job); break;
        case Next::failed: finish_failed(job, f); break;
        case Next::human: route_to_human(job); break;
        case Next::abandon:
            job->in.done.abandon();
            {
                std::lock_guard lock(mu);
                --open_jobs;
                cv.notify_all();
            }
            break;
        case Next::nothing: break;
    }
}

kafka::Record Sender::State::status_record(const Job& job, std::string message_id, std::string status,
                                           std::vector<DeliveryError> errors) const {
    DeliveryStatus s;
    s.id = envelope::new_id();
    s.channel = envelope::Channel{std::string(kChannelType), options.channel};
    s.message_id = std::move(message_id);
    s.status = std::move(status);
    if (!job.lane.empty()) {
        envelope::Participant to;
        to.id = "whatsapp:" + job.lane;
        s.recipient = std::move(to);
    }
    s.received_at = timestamp_of(options.now_ms());
    s.timestamp = s.received_at;
    s.errors = std::move(errors);
    s.callback_data = job.in.message.id;
    kafka::Record rec = encode(s);
    rec.topic = options.events_topic;
    return rec;
}

kafka::Record Sender::State::dead_letter(const Job& job, const Failure& f) const {
    kafka::Record rec;
    rec.topic = options.deadletter_topic;
    rec.key = job.in.record.record.key;
    rec.value = job.in.record.record.value;
    rec.headers = job.in.record.record.headers;
    rec.headers.push_back({"omnibus_error", f.message});
    rec.headers.push_back({"omnibus_error_code", f.code});
    rec.headers.push_back({"omnibus_failure", std::string(to_string(f.kind))});
    rec.headers.push_back({"omnibus_channel", options.channel});
    rec.headers.push_back({"omnibus_channel_type", std::string(kChannelType)});
    if (f.graph_code) rec.headers.push_back({"omnibus_graph_code", std::to_string(*f.graph_code)});
    if (!job.wamids.empty())
        rec.headers.push_back({"omnibus_parts_sent", std::to_string(job.wamids.size())});
    rec.headers.push_back({"omnibus_source_topic", job.in.record.record.topic});
    rec.headers.push_back({"omnibus_source_partition", std::to_string(job.in.record.partition)});
    rec.headers.push_back({"omnibus_source_offset", std::to_string(job.in.record.offset)});
    return rec;
}

void Sender::State::finish_accepted(const JobPtr& job) {
    std::vector<std::pair<kafka::Record, bool>> records;
    for (const std::string& wamid : job->wamids) records.emplace_back(status_record(*job, wamid, "accepted", {}), false);
    if (job->window == WindowAction::template_sent) {
        DeliveryError e;
        e.code = kReengagementCode;
        e.title = "customer service window closed";
        e.message = "more than 24 hours since the customer's last message: template " + *options.template_name +
                    " sent instead of the reply";
        records.emplace_back(status_record(*job, job->in.message.id, "window_closed", {std::move(e)}), false);
    }
    produce_all(job, std::move(records));
}

void Sender::State::finish_failed(const JobPtr& job, const Failure& f) {
    metrics.counter("omnibus_channel_send_failures_total", "Outbound replies that could not be delivered, by reason",
                    {{"channel", options.channel}, {"reason", std::string(to_string(f.kind))}})
        .inc();
    logger.warn("outbound reply not delivered; dead-lettered",
                {{"channel", options.channel}, {"envelope_id", job->in.message.id}, {"reason", f.message}});
    DeliveryError e;
    e.code = f.graph_code.value_or(0);
    e.title = std::string(to_string(f.kind));
    e.message = f.message;
    e.retryable = false;
    std::vector<std::pair<kafka::Record, bool>> records;
    records.emplace_back(dead_letter(*job, f), true);
    records.emplace_back(status_record(*job, job->in.message.id, "failed", {std::move(e)}), false);
    produce_all(job, std::move(records));
}

void Sender::State::route_to_human(const JobPtr& job) {
    window_human->inc();
    envelope::Envelope env = job->in.message;
    envelope::Route route = env.route.value_or(envelope::Route{});
    route.target = envelope::RouteTarget::human;
    if (!route.rule) route.rule = "window_closed";
    if (std::find(route.flags.begin(), route.flags.end(), kWindowClosedFlag) == route.flags.end())
        route.flags.emplace_back(kWindowClosedFlag);
    env.route = std::move(route);
    kafka::Record out = envelope::encode(env, job->in.record.record.key);
    out.topic = options.human_outbox_topic;
    DeliveryError e;
    e.code = kReengagementCode;
    e.title = "customer service window closed";
    e.message = "more than 24 hours since the customer's last message (or none seen): reply sent to the human outbox";
    std::vector<std::pair<kafka::Record, bool>> records;
    records.emplace_back(std::move(out), true);
    records.emplace_back(status_record(*job, job->in.message.id, "window_closed", {std::move(e)}), false);
    produce_all(job, std::move(records));
}

void Sender::State::produce_all(const JobPtr& job, std::vector<std::pair<kafka::Record, bool>> records) {
    job->records_left = static_cast<int>(records.size());
    for (auto& [rec, essential] : records) produce_one(job, std::move(rec), essential);
}

void Sender::State::produce_one(const JobPtr& job, kafka::Record rec, bool essential) {
    auto self = shared_from_this();
    auto copy = std::make_shared<kafka::Record>(rec);  // kept for a second attempt
    producer.produce(std::move(rec), [self, job, copy, essential](const kafka::DeliveryResult& r) {
        if (r.ok()) return self->record_settled(job, true);
        std::unique_lock lock(self->mu);
        if (self->stopping) {
            lock.unlock();
            logger.warn("record of an outbound reply not taken by Kafka at shutdown",
                        {{"channel", self->options.channel}, {"topic", copy->topic}, {"error", r.message}});
            self->record_settled(job, !essential);
            return;
        }
        if (std::uint64_t n = 0; log_record_refused.allow(n))
            logger.warn("Kafka refused a record of an outbound reply; producing it again",
                        {{"channel", self->options.channel}, {"topic", copy->topic}, {"error", r.message},
                         {"occurrences", n}});
        self->reproduce.emplace(Clock::now() + kReproduceDelay,
                                std::make_pair(job, std::make_pair(std::move(*copy), essential)));
        self->cv.notify_one();
    });
}

void Sender::State::record_settled(const JobPtr& job, bool ok_or_nonessential) {
    if (!ok_or_nonessential) job->essential_failed = true;  // written before the decrement below
    std::lock_guard lock(mu);
    if (--job->records_left > 0) return;
    if (job->essential_failed) job->in.done.abandon();
    else job->in.done.done();
    --open_jobs;
    cv.notify_all();
}

// ---- Sender -----------------------------------------------------------------------

Sender::Sender(SenderOptions options, http::Client& http, kafka::Producer& producer, DedupStore& windows,
               metrics::Registry& metrics) {
    if (!options.now_ms) options.now_ms = system_now_ms;
    if (options.rate_limit < 1) options.rate_limit = 1;
    state_ = std::make_shared<State>(std::move(options), http, producer, windows, metrics);
    std::weak_ptr<State> weak = state_;
    metrics.gauge_fn("omnibus_channel_outbound_open", "Outbound replies accepted and not yet completed",
                     {{"channel", state_->options.channel}}, [weak] {
                         auto s = weak.lock();
                         if (!s) return 0.0;
                         std::lock_guard lock(s->mu);
                         return static_cast<double>(s->open_jobs);
                     });
    state_->scheduler = std::thread([s = state_.get()] { s->run(); });
}

Sender::~Sender() { stop(2s); }

std::size_t Sender::queued() const {
    std::lock_guard lock(state_->mu);
    return state_->open_jobs;
}

void Sender::submit(OutboundJob in) {
    State& s = *state_;
    auto job = std::make_shared<Job>();
    job->in = std::move(in);
    {
        std::lock_guard lock(s.mu);
        if (s.stopping) {
            job->in.done.abandon();
            return;
        }
        ++s.open_jobs;
    }
    Result<OutboundPlan> p = plan(job->in.message);
    if (!p) {
        Failure f;
        f.kind = FailureKind::invalid_request;
        f.code = std::string(envelope::error_code_name(p.error().code));
        f.message = "reply cannot be delivered on WhatsApp: " + p.error().to_string();
        job->lane = recipient_wa_id(job->in.message).value_or("");
        s.finish_failed(job, f);
        return;
    }
    job->lane = std::move(p->to);
    job->requests = std::move(p->requests);

    const std::int64_t now = s.options.now_ms();
    const Window w = window_state(job->in.message, s.windows.expiry(dedup_key(window_key(job->lane))), now);
    if (w == Window::closed || (w == Window::unknown && !s.options.unknown_window_open)) {
        if (!s.options.template_name) return s.route_to_human(job);
        Result<std::string> t =
            plan_template(job->lane, *s.options.template_name, *s.options.template_language, job->in.message.id);
        if (!t) {
            Failure f;
            f.kind = FailureKind::template_error;
            f.code = "template";
            f.message = "closed_window_template: " + t.error().to_string();
            return s.finish_failed(job, f);
        }
        job->requests = {std::move(*t)};
        job->window = WindowAction::template_sent;
        s.window_template->inc();
    }
    std::lock_guard lock(s.mu);
    s.add_to_lane(job);
}

void Sender::release(const std::vector<kafka::TopicPartition>& partitions) {
    State& s = *state_;
    std::vector<JobPtr> dropped;
    {
        std::lock_guard lock(s.mu);
        const std::set<kafka::TopicPartition> gone(partitions.begin(), partitions.end());
        for (auto it = s.lanes.begin(); it != s.lanes.end();) {
            Lane& l = it->second;
            std::deque<JobPtr> keep;
            for (std::size_t i = 0; i < l.jobs.size(); ++i) {
                const JobPtr& j = l.jobs[i];
                const bool wire = i == 0 && l.on_wire;
                const bool leaving = gone.contains({j->in.record.record.topic, j->in.record.partition});
                if (!wire && leaving) {
                    dropped.push_back(j);
                    if (i == 0) l.waiting = false;
                } else {
                    if (leaving) j->released = true;
                    keep.push_back(j);
                }
            }
            l.jobs.swap(keep);
            if (l.jobs.empty()) {
                it = s.lanes.erase(it);
                continue;
            }
            if (!l.on_wire && !l.waiting) s.make_runnable(it->first, false);
            ++it;
        }
        s.open_jobs -= dropped.size();
        s.cv.notify_all();
    }
    for (const JobPtr& j : dropped) j->in.done.abandon();
}

void Sender::stop(std::chrono::milliseconds budget) {
    State& s = *state_;
    {
        std::lock_guard lock(s.mu);
        if (s.stopping) return;
        s.stopping = true;
    }
    // Everything not on the wire goes back to Kafka for the next owner.
    std::vector<kafka::TopicPartition> all;
    {
        std::lock_guard lock(s.mu);
        for (const auto& [name, lane] : s.lanes)
            for (const JobPtr& j : lane.jobs) all.push_back({j->in.record.record.topic, j->in.record.partition});
    }
    release(all);
    {
        std::unique_lock lock(s.mu);
        if (!s.cv.wait_for(lock, budget, [&] { return s.open_jobs == 0; }))
            logger.warn("whatsapp sender stopped with replies in flight; they are delivered again by the next owner",
                        {{"channel", s.options.channel}, {"open", static_cast<unsigned long>(s.open_jobs)}});
        s.quit = true;
        s.cv.notify_all();
    }
    if (s.scheduler.joinable()) s.scheduler.join();
}

}  // namespace omnibus::connectors::whatsapp
