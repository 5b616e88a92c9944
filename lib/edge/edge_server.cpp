// The public HTTP edge on Boost.Beast/Asio (see edge_server.h). With
// boost_impl.cpp, the only translation unit of the project that includes them.
//
// Shape: `threads` workers, each an io_context run by one thread. The acceptor
// lives on worker 0 and hands each accepted socket to the next worker in turn;
// a connection (Session) then lives on that worker only, so its state needs no
// lock: the worker's thread owns it. A Responder reaches its session from any
// thread by posting onto the session's io_context. Requests on one connection
// are served one after the other (read, handler, write, read the next), which
// answers pipelined requests in order and bounds what a client can make us buffer.
//
// Ownership: a worker owns its open sessions (the asynchronous operations
// pending on a session hold it too) until the session closes. A Responder
// holds only a weak reference, through a Gate that stop() closes before the
// io_contexts go away, so a handler that keeps its Responder for a long time
// never keeps a connection, nor the server, alive. Sessions share the Core
// (settings, routes, metrics, TLS context, counters).
//
// Timeouts: each session keeps one deadline for what it waits for now, and a
// sweep per worker enforces them (see Worker), so no operation arms a timer.
#include "edge/edge_server.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <charconv>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>

#include "edge/connection_limiter.h"
#include "edge/http_text.h"
#include "edge/rate_limiter.h"
#include "edge/url.h"
#include "log/log.h"
#include "metrics/metrics.h"

namespace omnibus::edge {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

const log::Logger lg{"edge"};

constexpr std::string_view kWebhooks = "/webhooks/";
constexpr size_t kReadChunk = 16 * 1024;
constexpr auto kLinger = std::chrono::seconds(1);  // reading what a closed-on client still sends
constexpr size_t kMaxLingerBytes = 256 * 1024;
constexpr auto kExpireGrace = std::chrono::seconds(1);  // after shutdown_timeout: 503s go out, then close

// ---------------------------------------------------------------- small pieces

// Headers the server writes itself; a handler's copies are ignored.
bool server_owned_header(std::string_view name) {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "connection") ||
           iequals(name, "date") || iequals(name, "content-type");
}

// The Date header, formatted once per second per thread.
std::string_view cached_http_date() {
    thread_local std::time_t cached_second = -1;
    thread_local std::string text;
    const std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        text = http_date(now);
        cached_second = now;
    }
    return text;
}

std::string_view reason_phrase(int status) {
    auto s = http::int_to_status(static_cast<unsigned>(status));
    if (s == http::status::unknown) return "Unknown";
    return http::obsolete_reason(s);
}

using omnibus::log::Throttle;

enum class Reject { body_too_large, headers_too_large, timeout, rate_limited, too_many_connections, count_ };
constexpr std::array<const char*, static_cast<size_t>(Reject::count_)> kRejectNames = {
    "body_too_large", "headers_too_large", "timeout", "rate_limited", "too_many_connections"};

// Per-channel series, cached so that no request takes the registry's mutex:
// the histogram at registration, a counter per status code the first time
// that code is answered on the channel.
class ChannelStats {
public:
    ChannelStats(metrics::Registry& registry, std::string label)
        : registry_(registry),
          label_(std::move(label)),
          duration_(registry.histogram("omnibus_edge_request_duration_seconds",
                                       "Time from a request's headers to its response, by channel.",
                                       metrics::latency_buckets(), {{"channel", label_}})) {
        for (auto& c : by_code_) c.store(nullptr, std::memory_order_relaxed);
    }

    const std::string& label() const { return label_; }

    void record(int status, Clock::duration elapsed) {
        counter(status).inc();
        duration_.observe(std::chrono::duration<double>(elapsed).count());
    }

private:
    metrics::Counter& counter(int status) {
        const size_t i = static_cast<size_t>(std::clamp(status, 100, 599) - 100);
        metrics::Counter* c = by_code_[i].load(std::memory_order_acquire);
        if (c) return *c;
        c = &registry_.counter("omnibus_edge_requests_total", "Requests answered by the edge, by channel and status.",
                               {{"channel", label_}, {"code", std::to_string(status)}});
        by_code_[i].store(c, std::memory_order_release);
        return *c;
    }

    metrics::Registry& registry_;
    std::string label_;
    metrics::Histogram& duration_;
    std::array<std::atomic<metrics::Counter*>, 500> by_code_;
};

struct Channel {
    std::string name;
    std::vector<std::string> methods;
    std::string allow;  // "GET, POST"
    Handler handler;
    std::unique_ptr<RateLimiter> limiter;  // null: no limit
    std::unique_ptr<ChannelStats> stats;
};

// A WebSocket route and its series (see websocket.h).
struct WsRoute {
    WebSocketRoute route;
    std::string label;  // the prefix without its slashes: "chat"
    metrics::Gauge* connections = nullptr;
    metrics::Counter* received = nullptr;
    metrics::Counter* sent = nullptr;
};

// ------------------------------------------------------------------ shared state

// What every session of one server shares. Immutable after start() except the
// atomics, the limiter and the drain condition.
struct Core {
    Core(EdgeSettings s, metrics::Registry& r)
        : settings(std::move(s)),
          registry(r),
          per_address(settings.max_connections_per_ip),
          connections_gauge(r.gauge("omnibus_edge_connections", "Open connections on the public edge.")),
          unknown(r, "unknown") {
        for (size_t i = 0; i < rejected.size(); ++i)
            rejected[i] = &r.counter("omnibus_edge_rejected_total",
                                     "Requests and connections the edge refused or cut off, by reason.",
                                     {{"reason", kRejectNames[i]}});
    }

    void reject(Reject why) { rejected[static_cast<size_t>(why)]->inc(); }

    const Channel* find(std::string_view path) const {
        if (path.size() <= kWebhooks.size() || path.substr(0, kWebhooks.size()) != kWebhooks) return nullptr;
        auto it = channels.find(std::string(path.substr(kWebhooks.size())));
        return it == channels.end() ? nullptr : it->second.get();
    }

    const WsRoute* find_ws(std::string_view path) const {
        for (const auto& r : ws_routes)
            if (path.substr(0, r->route.prefix.size()) == r->route.prefix) return r.get();
        return nullptr;
    }

    void connection_closed(const std::string& address) {
        per_address.release(address);
        connections_gauge.add(-1);
        open.fetch_sub(1, std::memory_order_acq_rel);
        if (stopping.load(std::memory_order_acquire)) {
            std::lock_guard lock(drain_mu);
            drain_cv.notify_all();
        }
    }

    const EdgeSettings settings;
    metrics::Registry& registry;
    std::unordered_map<std::string, std::unique_ptr<Channel>> channels;  // filled before start()
    std::vector<std::unique_ptr<WsRoute>> ws_routes;                    // filled before start()
    std::optional<ssl::context> tls;
    ConnectionLimiter per_address;
    metrics::Gauge& connections_gauge;
    std::array<metrics::Counter*, static_cast<size_t>(Reject::count_)> rejected{};
    ChannelStats unknown;

    std::atomic<size_t> open{0};
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> next_request_id{1};
    std::atomic<uint64_t> next_websocket_id{1};
    std::mutex drain_mu;
    std::condition_variable drain_cv;

    Throttle log_rejected_connection, log_rejected_request, log_timeout, log_deadline, log_handler, log_accept,
        log_websocket;
};

class SessionBase {
public:
    virtual ~SessionBase() = default;
    virtual void run() = 0;                                                   // worker thread
    virtual void post_response(uint64_t id, Response&& r, bool dropped) = 0;  // any thread
    virtual void on_response(uint64_t id, Response&& r, bool dropped) = 0;    // worker thread
    virtual void take_inline(uint64_t id, Response&& r, bool dropped) = 0;    // worker thread, in the handler call
    virtual void begin_shutdown() = 0;                                        // worker thread
    virtual void expire() = 0;                                                // worker thread
    virtual void deadline_passed() = 0;                                       // worker thread

    // When what the session waits for (a handshake, the next request, its
    // headers or body, the handler's answer, a write) must have happened.
    // Checked by the worker's sweep. Worker thread only.
    Clock::time_point deadline = Clock::time_point::max();
};

// The session whose handler is running on this thread right now: an answer
// given inside the handler call is taken as it is, without a post.
thread_local SessionBase* tl_dispatching = nullptr;

// Lets Responders reach a worker's sessions only while its io_context exists.
struct Gate {
    std::mutex mu;
    bool open = true;  // guarded by mu
};

// One event loop and the sessions it owns. Timeouts are enforced by one
// periodic sweep over the sessions' deadlines instead of a timer per
// operation: per-operation timers cost a timerfd_settime syscall per request
// (a third of all syscalls under load), and no timeout here needs to be
// finer than the sweep's tick.
struct Worker {
    explicit Worker(std::chrono::milliseconds sweep_tick) : tick(sweep_tick) {}

    void start_sweep() {
        sweep.expires_after(tick);
        sweep.async_wait([this](error_code ec) {
            if (ec) return;
            const auto now = Clock::now();
            std::vector<std::shared_ptr<SessionBase>> due;
            for (const auto& [raw, sp] : sessions)
                if (raw->deadline <= now) due.push_back(sp);
            for (auto& sp : due)
                if (sp->deadline <= now) sp->deadline_passed();
            start_sweep();
        });
    }

    std::vector<std::shared_ptr<SessionBase>> snapshot() const {
        std::vector<std::shared_ptr<SessionBase>> out;
        out.reserve(sessions.size());
        for (const auto& [raw, sp] : sessions) out.push_back(sp);
        return out;
    }

    // Answers given on other threads (a Kafka acknowledgement arrives on the producer's
    // thread) reach the worker through this inbox: the first one posts a drain to the
    // io_context, the ones arriving before it runs only join the batch. A delivery report
    // completes many requests at once, and one post per answer cost a lock of the
    // io_context's queue and often a wake-up of its thread each.
    struct PostedResponse {
        std::shared_ptr<SessionBase> session;
        uint64_t id;
        Response response;
        bool dropped;
    };

    void post_response(std::shared_ptr<SessionBase> session, uint64_t id, Response&& r, bool dropped) {
        bool schedule;
        {
            std::lock_guard lock(inbox_mu);
            inbox.push_back({std::move(session), id, std::move(r), dropped});
            schedule = !drain_posted;
            drain_posted = true;
        }
        if (schedule) asio::post(ioc, [this] { drain_inbox(); });
    }

    void drain_inbox() {
        {
            std::lock_guard lock(inbox_mu);
            draining.swap(inbox);
            drain_posted = false;
        }
        for (auto& p : draining) p.session->on_response(p.id, std::move(p.response), p.dropped);
        draining.clear();  // keeps the capacity for the next batch
    }

    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
    std::mutex inbox_mu;
    std::vector<PostedResponse> inbox;  // guarded by inbox_mu
    bool drain_posted = false;          // guarded by inbox_mu: a drain_inbox is queued
    std::vector<PostedResponse> draining;  // worker thread only
    std::shared_ptr<Gate> gate = std::make_shared<Gate>();
    const std::chrono::milliseconds tick;
    asio::steady_timer sweep{ioc};
    std::thread thread;
    // The open connections of this worker, owned here from run() until they
    // close (pending operations hold them too). Worker thread only.
    std::unordered_map<SessionBase*, std::shared_ptr<SessionBase>> sessions;
};

using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;
using TlsStream = ssl::stream<Socket>;

// One request waiting for its answer (see detail::Exchange and Responder).
class PendingExchange final : public detail::Exchange {
public:
    PendingExchange(std::shared_ptr<Gate> gate, std::weak_ptr<SessionBase> session, SessionBase* raw, uint64_t id)
        : gate_(std::move(gate)), session_(std::move(session)), raw_(raw), id_(id) {}

    // The last Responder went away unanswered: the client gets a 500.
    ~PendingExchange() override {
        if (claim()) send(Response::error(500, "internal error"), true);
    }

    void deliver(Response&& r) override { send(std::move(r), false); }

private:
    void send(Response&& r, bool dropped) {
        if (tl_dispatching == raw_) {
            // Ids are unique across sessions, so a reused address cannot take another's answer.
            raw_->take_inline(id_, std::move(r), dropped);
            return;
        }
        std::lock_guard lock(gate_->mu);
        if (!gate_->open) return;
        if (auto s = session_.lock()) s->post_response(id_, std::move(r), dropped);
    }

    std::shared_ptr<Gate> gate_;
    std::weak_ptr<SessionBase> session_;
    SessionBase* raw_;
    uint64_t id_;
};

// ------------------------------------------------------------- WebSocket sessions

// What a WebSocket handle reaches of its session, from any thread (through a post).
class WsControl {
public:
    virtual ~WsControl() = default;
    virtual void enqueue(std::string text) = 0;                  // worker thread
    virtual void close_with(uint16_t code, std::string reason) = 0;  // worker thread
};

// The WebSocket the route's handlers hold (websocket.h). Like a Responder it reaches its
// session only through the worker's Gate, so it may outlive the connection and the server.
class WsHandle final : public WebSocket {
public:
    WsHandle(std::shared_ptr<Gate> gate, asio::io_context& ioc, uint64_t id) : gate_(std::move(gate)), ioc_(ioc), id_(id) {}

    void bind(std::weak_ptr<WsControl> session) { session_ = std::move(session); }
    void mark_closing() { closing_.store(true, std::memory_order_release); }

    bool send(std::string text) override {
        if (closing_.load(std::memory_order_acquire)) return false;
        return post([text = std::move(text)](WsControl& s) mutable { s.enqueue(std::move(text)); });
    }
    void close(uint16_t code, std::string reason) override {
        if (closing_.exchange(true, std::memory_order_acq_rel)) return;
        post([code, reason = std::move(reason)](WsControl& s) mutable { s.close_with(code, std::move(reason)); });
    }
    uint64_t id() const override { return id_; }

private:
    template <class F>
    bool post(F&& fn) {
        std::lock_guard lock(gate_->mu);
        if (!gate_->open) return false;
        auto s = session_.lock();
        if (!s) return false;
        asio::post(ioc_, [s = std::move(s), fn = std::forward<F>(fn)]() mutable { fn(*s); });
        return true;
    }

    std::shared_ptr<Gate> gate_;
    asio::io_context& ioc_;
    const uint64_t id_;
    std::weak_ptr<WsControl> session_;
    std::atomic<bool> closing_{false};
};

// A connection after its upgrade: the WebSocket handshake, then a read loop handing text
// messages to the route's handler, and a queue of outbound frames (messages, pings, the
// close) written one at a time. It takes over the HTTP session's connection, counted in the
// Core until the session is destroyed.
//
// Timeouts are the sweep's, as for HTTP (Beast's own websocket timeouts are off: with Boost
// 1.74 a read they resume after a timed-out close trips an assertion, Beast issue 2264): the
// handshake gets header_timeout, an open connection is pinged after half of idle_timeout
// without a frame from the client and closed after all of it, a closing handshake gets
// write_timeout (ours) or header_timeout (the client's).
template <class Stream>
class WsSession final : public SessionBase, public WsControl, public std::enable_shared_from_this<WsSession<Stream>> {
public:
    WsSession(std::shared_ptr<Core> core, Worker& worker, const WsRoute& route, std::string address)
        : core_(std::move(core)),
          worker_(worker),
          route_(route),
          address_(std::move(address)),
          handle_(std::make_shared<WsHandle>(worker.gate, worker.ioc,
                                             core_->next_websocket_id.fetch_add(1, std::memory_order_relaxed))) {}

    ~WsSession() override {
        handle_->mark_closing();
        if (opened_) route_.connections->add(-1);
        if (attached_) core_->connection_closed(address_);
    }

    // Before attach(): the handle the accept function gets.
    std::shared_ptr<WsHandle> handle() {
        handle_->bind(std::static_pointer_cast<WsControl>(this->shared_from_this()));
        return handle_;
    }

    // The connection (its accounting too), the upgrade request and the route's handlers.
    void attach(Stream&& stream, http::request<http::string_body>&& upgrade, WebSocketHandlers handlers) {
        ws_.emplace(std::move(stream));
        upgrade_ = std::move(upgrade);
        handlers_ = std::move(handlers);
        attached_ = true;
    }

    void run() override {
        worker_.sessions.emplace(this, this->shared_from_this());
        if (core_->stopping.load(std::memory_order_acquire)) return close_now(close_code::going_away);
        expect_within(core_->settings.header_timeout);
        ws_->read_message_max(route_.route.max_message_bytes);
        ws_->set_option(websocket::stream_base::decorator(
            [](websocket::response_type& res) { res.set(http::field::server, "omnibus"); }));
        // Every frame from the client counts as activity (pongs included). Beast answers a
        // client's close frame and then waits for the TCP close without a limit of its own.
        ws_->control_callback([this](websocket::frame_type kind, beast::string_view) {
            last_rx_ = Clock::now();
            if (kind != websocket::frame_type::close || peer_closed_) return;
            peer_closed_ = true;
            const auto code = ws_->reason().code;
            peer_code_ = code ? static_cast<uint16_t>(code) : close_code::no_status;
            if (!closing_) expect_within(core_->settings.header_timeout);
        });
        ws_->async_accept(upgrade_, [self = this->shared_from_this()](error_code ec) { self->on_accept(ec); });
    }

    void post_response(uint64_t, Response&&, bool) override {}
    void on_response(uint64_t, Response&&, bool) override {}
    void take_inline(uint64_t, Response&&, bool) override {}

    void begin_shutdown() override { close_with(close_code::going_away, "server stopping"); }
    void expire() override { close_now(close_code::going_away); }

    void deadline_passed() override {
        // The handshake, or a closing handshake, did not finish in time.
        if (!open_ || closing_ || peer_closed_)
            return close_now(close_code_ ? close_code_ : peer_closed_ ? peer_code_ : close_code::abnormal);
        const auto now = Clock::now();
        const auto idle = route_.route.idle_timeout;
        if (now - last_rx_ >= idle) {
            note("websocket client silent for idle_timeout; connection closed");
            return close_now(close_code::abnormal);
        }
        if (now - last_rx_ >= idle / 2) {
            if (ping_at_ < last_rx_) {  // none since the client was last heard
                ping_at_ = now;
                queue_.push_back(Out{{}, Out::ping, 0});
                write_next();
            }
            deadline = last_rx_ + idle;
        } else {
            deadline = last_rx_ + idle / 2;
        }
    }

    void enqueue(std::string text) override {
        if (closing_ || finished_) return;
        if (queue_.size() >= route_.route.max_queued_messages) {
            note("outbound queue full; connection closed");
            return close_with(close_code::policy_violation, "send queue full");
        }
        queue_.push_back(Out{std::move(text), Out::message, 0});
        write_next();
    }

    // Queues the close frame after what is queued already (begin_shutdown: the client gets
    // what was sent to it, then the close), and bounds the whole closing handshake.
    void close_with(uint16_t code, std::string reason) override {
        if (closing_ || finished_) return;
        closing_ = true;
        close_code_ = code;
        handle_->mark_closing();
        if (reason.size() > 123) reason.resize(123);
        deadline = Clock::now() + core_->settings.write_timeout;
        queue_.push_back(Out{std::move(reason), Out::close, code});  // during the handshake: sent once it is done
        write_next();
    }

private:
    struct Out {
        std::string text;  // a message, or the close frame's reason
        enum Kind { message, ping, close } kind = message;
        uint16_t code = 0;  // of a close frame
    };

    void expect_within(Clock::duration d) { deadline = Clock::now() + d; }

    void note(std::string_view what) {
        uint64_t n = 0;
        if (core_->log_websocket.allow(n))
            lg.warn(what, {{"route", route_.label}, {"client", address_}, {"occurrences", n}});
    }

    void on_accept(error_code ec) {
        if (ec) {
            lg.debug("websocket handshake failed", {{"client", address_}, {"error", ec.message()}});
            return close_now(close_code::abnormal);
        }
        open_ = opened_ = true;
        route_.connections->add(1);
        last_rx_ = Clock::now();
        if (!closing_) deadline = last_rx_ + route_.route.idle_timeout / 2;
        write_next();
        read();
    }

    void read() {
        ws_->async_read(in_, [self = this->shared_from_this()](error_code ec, size_t) { self->on_read(ec); });
    }

    // Once this side is closing, no read is started again: Beast's close operation reads
    // (and drops) what still comes until the client's close frame, and its completion ends
    // the session. (A read started meanwhile would wait for the close's read lock.)
    void on_read(error_code ec) {
        if (ec) return finish(code_for(ec));
        if (closing_) {
            in_.consume(in_.size());
            return;
        }
        if (!ws_->got_text()) {
            in_.consume(in_.size());
            note("binary websocket message; connection closed");
            return close_with(close_code::unsupported_data, "text messages only");
        }
        std::string text = beast::buffers_to_string(in_.data());
        in_.consume(in_.size());
        last_rx_ = Clock::now();
        route_.received->inc();
        if (handlers_.on_message) {
            try {
                handlers_.on_message(std::move(text));
            } catch (const std::exception& e) {
                lg.error("websocket message handler threw; connection closed",
                         {{"route", route_.label}, {"error", e.what()}});
                close_with(close_code::internal_error, "internal error");
            }
        }
        if (!finished_ && !closing_) read();
    }

    // The close code the connection ended with, from the read loop's error.
    uint16_t code_for(error_code ec) const {
        if (ec == websocket::error::closed) {
            if (close_code_) return close_code_;  // ours, answered
            const auto code = ws_->reason().code;
            return code ? static_cast<uint16_t>(code) : close_code::no_status;
        }
        // Beast sent the close frame for these itself.
        if (ec == websocket::error::message_too_big || ec == websocket::error::buffer_overflow)
            return close_code::too_big;
        if (ec == websocket::error::bad_frame_payload) return close_code::invalid_payload;
        if (ec == websocket::condition::protocol_violation) return close_code::protocol_error;
        return close_code_ ? close_code_ : close_code::abnormal;
    }

    void write_next() {
        if (writing_ || queue_.empty() || !open_ || finished_) return;
        writing_ = true;
        Out& out = queue_.front();
        if (out.kind == Out::ping) {
            ws_->async_ping({}, [self = this->shared_from_this()](error_code ec) { self->on_written(ec, false); });
            return;
        }
        if (out.kind == Out::close) {
            const websocket::close_reason reason(static_cast<websocket::close_code>(out.code), out.text);
            queue_.clear();  // nothing goes out after the close frame
            ws_->async_close(reason,
                             [self = this->shared_from_this()](error_code ec) {
                                 self->writing_ = false;
                                 if (ec) return self->close_now(self->close_code_);
                                 self->finish(self->close_code_);  // the client answered
                             });
            return;
        }
        ws_->text(true);
        ws_->async_write(asio::buffer(out.text),
                         [self = this->shared_from_this()](error_code ec, size_t) { self->on_written(ec, true); });
    }

    // A message or a ping went out (or could not).
    void on_written(error_code ec, bool message) {
        writing_ = false;
        if (ec) return close_now(close_code_ ? close_code_ : close_code::abnormal);
        if (message) route_.sent->inc();
        if (!queue_.empty()) queue_.pop_front();
        write_next();
    }

    // Ends the connection at once (no closing handshake).
    void close_now(uint16_t code) {
        if (!close_code_) close_code_ = code;
        finish(close_code_);
    }

    void finish(uint16_t code) {
        if (finished_) return;
        auto self = this->shared_from_this();  // erase() below may drop the owning reference
        finished_ = true;
        open_ = false;
        deadline = Clock::time_point::max();
        handle_->mark_closing();
        queue_.clear();
        error_code ec;
        if (ws_) beast::get_lowest_layer(*ws_).close(ec);
        worker_.sessions.erase(this);
        if (handlers_.on_close) {
            try {
                handlers_.on_close(code);
            } catch (const std::exception& e) {
                lg.error("websocket close handler threw", {{"route", route_.label}, {"error", e.what()}});
            }
        }
        handlers_ = {};
    }

    std::shared_ptr<Core> core_;
    Worker& worker_;
    const WsRoute& route_;
    std::string address_;
    std::shared_ptr<WsHandle> handle_;
    std::optional<websocket::stream<Stream>> ws_;
    http::request<http::string_body> upgrade_;
    WebSocketHandlers handlers_;
    beast::flat_buffer in_;
    std::deque<Out> queue_;
    bool attached_ = false;
    bool open_ = false;    // handshake done, not finished
    bool opened_ = false;  // counted in the route's gauge
    bool writing_ = false;
    bool closing_ = false;
    bool finished_ = false;
    uint16_t close_code_ = 0;  // the code this side closed with
    Clock::time_point last_rx_{};  // the client's last frame (or the handshake)
    Clock::time_point ping_at_{};  // our last ping
    bool peer_closed_ = false;  // the client's close frame arrived
    uint16_t peer_code_ = 0;    // and carried this code
};

// ---------------------------------------------------------------- the session

template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
    static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

public:
    Session(std::shared_ptr<Core> core, Worker& worker, Socket&& socket, std::string address, uint16_t port)
        : core_(std::move(core)),
          settings_(core_->settings),
          worker_(worker),
          stream_(make_stream(std::move(socket), *core_)),
          address_(std::move(address)),
          client_port_(port) {}

    ~Session() override {
        if (!handed_over_) core_->connection_closed(address_);
    }

    void run() override {
        worker_.sessions.emplace(this, this->shared_from_this());
        if (core_->stopping.load(std::memory_order_acquire)) return close_now();
        if constexpr (kTls) {
            state_ = State::handshake;
            expect_within(settings_.header_timeout);
            stream_.async_handshake(ssl::stream_base::server,
                                    [self = this->shared_from_this()](error_code ec) { self->on_handshake(ec); });
        } else {
            read_request();
        }
    }

    void post_response(uint64_t id, Response&& r, bool dropped) override {
        worker_.post_response(this->shared_from_this(), id, std::move(r), dropped);
    }

    void take_inline(uint64_t id, Response&& r, bool dropped) override {
        if (!awaiting_ || id != current_id_) return;
        inline_ = std::move(r);
        inline_dropped_ = dropped;
    }

    void begin_shutdown() override {
        shutting_down_ = true;
        // Between requests there is nothing to finish. A request being read or
        // handled goes on; its response carries Connection: close.
        const bool nothing_read = state_ == State::reading && parser_ && !parser_->got_some() && buffer_.size() == 0;
        if (state_ == State::idle || state_ == State::handshake || nothing_read) close_now();
    }

    void expire() override {
        shutting_down_ = true;
        if (awaiting_) {
            end_exchange();
            write_response(Response::error(503, "shutting down"));
            expect_within(std::min<Clock::duration>(settings_.write_timeout, kExpireGrace));
        } else if (state_ != State::writing) {
            close_now();
        }
    }

    void deadline_passed() override {
        switch (state_) {
            case State::reading:
                // A connection that never sent a byte is merely idle; a request
                // that started but did not arrive in time (slowloris) is cut off.
                // No answer either way.
                if (parser_ && (parser_->got_some() || buffer_.size() > 0)) {
                    core_->reject(Reject::timeout);
                    uint64_t n = 0;
                    if (core_->log_timeout.allow(n))
                        lg.warn("request read timed out; connection closed",
                                {{"client", address_},
                                 {"phase", parser_->is_header_done() ? "body" : "headers"},
                                 {"occurrences", n}});
                }
                return close_now();
            case State::awaiting:
                return on_request_deadline();
            default:
                return close_now();  // handshake, idle, writing, closing
        }
    }

private:
    enum class State { handshake, idle, reading, awaiting, writing, closing, closed };

    static Stream make_stream(Socket&& socket, Core& core) {
        if constexpr (kTls) {
            return Stream(std::move(socket), *core.tls);
        } else {
            return Stream(std::move(socket));
        }
    }

    Socket& socket() {
        if constexpr (kTls) {
            return stream_.next_layer();
        } else {
            return stream_;
        }
    }

    void expect_within(Clock::duration d) { deadline = Clock::now() + d; }

    void on_handshake(error_code ec) {
        if (ec) {
            lg.debug("tls handshake failed", {{"client", address_}, {"error", ec.message()}});
            return close_now();
        }
        read_request();
    }

    // -- reading

    void read_request() {
        if (shutting_down_ || core_->stopping.load(std::memory_order_acquire)) return close_graceful();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(std::min<size_t>(settings_.max_header_bytes, UINT32_MAX)));
        parser_->body_limit(settings_.max_body_bytes);
        if (first_request_ || buffer_.size() > 0) {
            // A new connection has header_timeout to send its first request.
            first_request_ = false;
            return read_header();
        }
        // Between requests: wait for the first byte up to idle_timeout; the
        // header_timeout then runs from that byte (a slow trickle gets cut off).
        state_ = State::idle;
        expect_within(settings_.idle_timeout);
        if constexpr (!kTls) {
            // Plain TCP: wait until the socket is readable, then read. asio's asynchronous read
            // first tries a read at once, which between keep-alive requests finds nothing (the
            // client sends the next request only once it has this answer): one system call
            // wasted per request. (TLS keeps the read: its stream may hold decrypted bytes
            // already, which a wait on the socket would not see.)
            return wait_readable();
        }
        stream_.async_read_some(
            buffer_.prepare(kReadChunk),
            [self = this->shared_from_this()](error_code ec, size_t n) { self->on_idle_read(ec, n); });
    }

    void wait_readable() {
        socket().async_wait(Socket::wait_read, [self = this->shared_from_this()](error_code ec) {
            self->on_readable(ec);
        });
    }

    void on_readable(error_code ec) {
        if (ec) return close_now();  // idle timeout or stop() closed it
        error_code rec;
        if (!socket().non_blocking()) socket().non_blocking(true, rec);  // never block the worker
        const size_t n = socket().read_some(buffer_.prepare(kReadChunk), rec);
        if (rec == asio::error::would_block || rec == asio::error::try_again) return wait_readable();
        on_idle_read(rec, n);  // eof: the client closed
    }

    void on_idle_read(error_code ec, size_t n) {
        if (ec) return close_now();  // the client closed, idle timeout or stop() closed it
        buffer_.commit(n);
        read_header();
    }

    void read_header() {
        state_ = State::reading;
        expect_within(settings_.header_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = this->shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
    }

    void on_header(error_code ec) {
        started_ = Clock::now();
        if (ec) return on_read_error(ec);
        const auto& req = parser_->get();
        if (req.version() != 10 && req.version() != 11) return fail(505, "http version not supported", nullptr);
        if (req.version() == 11 && req.find(http::field::host) == req.end()) return fail(400, "bad request", nullptr);
        if (!parser_->is_done()) {
            auto expect = req.find(http::field::expect);
            if (expect != req.end() && iequals(expect->value(), "100-continue")) {
                head_ = "HTTP/1.1 100 Continue\r\n\r\n";
                asio::async_write(stream_, asio::buffer(head_),
                                  [self = this->shared_from_this()](error_code wec, size_t) {
                                      if (wec) return self->close_now();
                                      self->read_body();
                                  });
                return;
            }
        }
        read_body();
    }

    void read_body() {
        if (parser_->is_done()) return on_body({});
        expect_within(settings_.body_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](error_code ec, size_t) { self->on_body(ec); });
    }

    void on_body(error_code ec) {
        if (ec) return on_read_error(ec);
        handle_request();
    }

    // The channel a half-read request was for, when its request line got that far.
    ChannelStats* stats_for_partial_request() {
        if (!parser_ || parser_->get().target().empty()) return &core_->unknown;
        const Channel* ch = core_->find(percent_decode(split_target(parser_->get().target()).path, false));
        return ch ? ch->stats.get() : &core_->unknown;
    }

    void on_read_error(error_code ec) {
        if (state_ == State::closed) return;  // closed meanwhile (deadline, stop)
        if (ec == http::error::header_limit) {
            core_->reject(Reject::headers_too_large);
            note_rejected_request("headers too large");
            return fail(431, "request headers too large", &core_->unknown);
        }
        if (ec == http::error::body_limit) {
            core_->reject(Reject::body_too_large);
            note_rejected_request("body too large");
            return fail(413, "payload too large", stats_for_partial_request());
        }
        if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
            ec != http::error::end_of_stream && ec != http::error::partial_message) {
            lg.debug("malformed request", {{"client", address_}, {"error", ec.message()}});
            return fail(400, "bad request", &core_->unknown);
        }
        close_now();  // the client went away
    }

    void note_rejected_request(std::string_view what) {
        uint64_t n = 0;
        if (core_->log_rejected_request.allow(n))
            lg.warn("request refused", {{"reason", what}, {"client", address_}, {"occurrences", n}});
    }

    // An answer after which the connection closes (what follows cannot be trusted).
    void fail(int status, std::string_view message, ChannelStats* stats) {
        stats_ = stats ? stats : &core_->unknown;
        keep_alive_ = false;
        write_response(Response::error(status, message));
    }

    // -- handling

    void handle_request() {
        auto& req = parser_->get();
        keep_alive_ = req.keep_alive();
        http10_ = req.version() == 10;

        const Target target = split_target(req.target());
        std::string path = percent_decode(target.path, false);
        if (const WsRoute* ws = core_->find_ws(path)) return upgrade(*ws, target, std::move(path));
        const Channel* ch = core_->find(path);
        if (!ch) {
            stats_ = &core_->unknown;
            return write_response(Response::error(404, "not found"));
        }
        stats_ = ch->stats.get();
        const std::string_view method = req.method_string();
        if (std::find(ch->methods.begin(), ch->methods.end(), method) == ch->methods.end()) {
            Response r = Response::error(405, "method not allowed");
            r.headers.push_back({"Allow", ch->allow});
            return write_response(std::move(r));
        }
        if (ch->limiter) {
            auto d = ch->limiter->try_acquire(Clock::now());
            if (!d.admitted) {
                core_->reject(Reject::rate_limited);
                uint64_t n = 0;
                if (core_->log_rejected_request.allow(n))
                    lg.warn("channel rate limit exceeded", {{"channel", ch->name}, {"occurrences", n}});
                Response r = Response::error(429, "too many requests");
                r.headers.push_back({"Retry-After", std::to_string(RateLimiter::retry_after_seconds(d.retry_after))});
                return write_response(std::move(r));
            }
        }

        Request request = make_request(req, target, std::move(path), ch->name);
        parser_.reset();

        const uint64_t id = core_->next_request_id.fetch_add(1, std::memory_order_relaxed);
        current_id_ = id;
        awaiting_ = true;
        state_ = State::awaiting;
        expect_within(settings_.request_timeout);

        auto exchange = std::make_shared<PendingExchange>(worker_.gate, this->weak_from_this(), this, id);
        exchange_ = exchange;
        inline_.reset();
        tl_dispatching = this;
        try {
            ch->handler(std::move(request), Responder(exchange));
        } catch (const std::exception& e) {
            handler_failed(*ch, *exchange, e.what());
        } catch (...) {
            handler_failed(*ch, *exchange, "unknown exception");
        }
        exchange.reset();  // the handler kept no Responder: that answer (a 500) is taken inline too
        tl_dispatching = nullptr;
        if (inline_) {
            Response r = std::move(*inline_);
            inline_.reset();
            on_response(id, std::move(r), inline_dropped_);
        }
    }

    Request make_request(http::request<http::string_body>& req, const Target& target, std::string path,
                         const std::string& channel) {
        Request request;
        request.method = std::string(req.method_string());
        request.target = std::string(req.target());
        request.path = std::move(path);
        request.channel = channel;
        request.query = parse_query(target.query);
        request.headers.reserve(8);
        for (const auto& f : req) request.headers.push_back({std::string(f.name_string()), std::string(f.value())});
        request.body = std::move(req.body());
        request.client_address = address_;
        request.client_port = client_port_;
        request.tls = kTls;
        request.http_version = req.version();
        return request;
    }

    // A request under a WebSocket route: a GET upgrade the route accepts becomes a
    // WebSocket session, which takes the connection over; anything else is answered here.
    void upgrade(const WsRoute& route, const Target& target, std::string path) {
        auto& req = parser_->get();
        stats_ = &core_->unknown;
        if (req.method() != http::verb::get) {
            Response r = Response::error(405, "method not allowed");
            r.headers.push_back({"Allow", "GET"});
            return write_response(std::move(r));
        }
        if (!websocket::is_upgrade(req)) {
            Response r = Response::error(426, "websocket upgrade required");
            r.headers.push_back({"Upgrade", "websocket"});
            return write_response(std::move(r));
        }
        if (shutting_down_ || core_->stopping.load(std::memory_order_acquire))
            return fail(503, "shutting down", nullptr);
        Request request = make_request(req, target, std::move(path), route.label);
        auto ws = std::make_shared<WsSession<Stream>>(core_, worker_, route, address_);
        std::optional<WebSocketHandlers> handlers;
        try {
            handlers = route.route.accept(request, ws->handle());
        } catch (const std::exception& e) {
            uint64_t n = 0;
            if (core_->log_handler.allow(n))
                lg.error("websocket accept threw; refused", {{"route", route.label}, {"error", e.what()}, {"occurrences", n}});
        }
        if (!handlers) return write_response(Response::error(403, "forbidden"));

        // Hand the connection over: from here on the WebSocket session owns it (and its
        // place in the connection counts); this session ends without touching it.
        auto self = this->shared_from_this();
        ws->attach(std::move(stream_), parser_->release(), std::move(*handlers));
        parser_.reset();
        handed_over_ = true;
        state_ = State::closed;
        deadline = Clock::time_point::max();
        worker_.sessions.erase(this);
        ws->run();
    }

    void handler_failed(const Channel& ch, PendingExchange& exchange, const char* what) {
        uint64_t n = 0;
        const bool answered = !exchange.claim();
        if (core_->log_handler.allow(n))
            lg.error("channel handler threw",
                     {{"channel", ch.name}, {"error", what}, {"answered", answered}, {"occurrences", n}});
        if (!answered) {
            inline_ = Response::error(500, "internal error");
            inline_dropped_ = false;
        }
    }

    void on_response(uint64_t id, Response&& r, bool dropped) override {
        if (!awaiting_ || id != current_id_) return;  // too late: the deadline or stop() answered already
        end_exchange();
        if (dropped) {
            uint64_t n = 0;
            if (core_->log_handler.allow(n))
                lg.error("channel handler dropped its responder without answering; answered 500",
                         {{"channel", channel_label()}, {"occurrences", n}});
        }
        write_response(std::move(r));
    }

    void on_request_deadline() {
        if (!awaiting_) return;
        end_exchange();
        core_->reject(Reject::timeout);
        uint64_t n = 0;
        if (core_->log_deadline.allow(n))
            lg.warn("channel handler did not answer before the request deadline; answered 503",
                    {{"channel", channel_label()},
                     {"timeout_ms", static_cast<long long>(settings_.request_timeout.count())},
                     {"occurrences", n}});
        write_response(Response::error(503, "timeout"));
    }

    void end_exchange() {
        awaiting_ = false;
        if (auto ex = exchange_.lock()) ex->claim();  // a later respond() then reports false
        exchange_.reset();
    }

    std::string_view channel_label() const { return stats_ ? stats_->label() : std::string_view("unknown"); }

    // -- writing

    void write_response(Response&& r) {
        bool valid = r.status >= 200 && r.status <= 599 && is_safe_header_value(r.content_type);
        for (const auto& h : r.headers) valid = valid && is_token(h.name) && is_safe_header_value(h.value);
        if (!valid) {
            uint64_t n = 0;
            if (core_->log_handler.allow(n))
                lg.error("channel handler gave an invalid response; answered 500",
                         {{"channel", channel_label()}, {"status", r.status}, {"occurrences", n}});
            r = Response::error(500, "internal error");
        }

        const bool close = !keep_alive_ || shutting_down_ || core_->stopping.load(std::memory_order_acquire);
        const bool no_body = r.status == 204 || r.status == 304;
        std::string& h = head_;
        h.clear();
        char num[24];
        h += "HTTP/1.1 ";
        h.append(num, static_cast<size_t>(std::to_chars(num, num + sizeof num, r.status).ptr - num));
        h += ' ';
        h += reason_phrase(r.status);
        h += "\r\nDate: ";
        h += cached_http_date();
        h += "\r\n";
        if (!no_body) {
            h += "Content-Type: ";
            h += r.content_type;
            h += "\r\nContent-Length: ";
            h.append(num, static_cast<size_t>(std::to_chars(num, num + sizeof num, r.body.size()).ptr - num));
            h += "\r\n";
        }
        for (const auto& x : r.headers) {
            if (server_owned_header(x.name)) continue;
            h += x.name;
            h += ": ";
            h += x.value;
            h += "\r\n";
        }
        if (close)
            h += "Connection: close\r\n";
        else if (http10_)
            h += "Connection: keep-alive\r\n";
        h += "\r\n";
        body_ = no_body ? std::string() : std::move(r.body);

        (stats_ ? stats_ : &core_->unknown)->record(r.status, Clock::now() - started_);
        close_after_write_ = close;
        state_ = State::writing;
        expect_within(settings_.write_timeout);
        std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(body_)};
        asio::async_write(stream_, buffers,
                          [self = this->shared_from_this()](error_code ec, size_t) { self->on_write(ec); });
    }

    void on_write(error_code ec) {
        if (ec || state_ == State::closed) return close_now();
        stats_ = nullptr;
        if (close_after_write_) return close_graceful();
        read_request();
    }

    // -- closing

    // Half-close, then read (and drop) what the client still sends for a
    // moment, so that it reads our last response instead of a reset.
    void close_graceful() {
        if (state_ == State::closing || state_ == State::closed) return;
        state_ = State::closing;
        expect_within(kLinger);
        if constexpr (kTls) {
            stream_.async_shutdown([self = this->shared_from_this()](error_code) { self->close_now(); });
        } else {
            error_code ec;
            socket().shutdown(tcp::socket::shutdown_send, ec);
            if (ec) return close_now();
            linger();
        }
    }

    void linger() {
        socket().async_read_some(asio::buffer(linger_buf_), [self = this->shared_from_this()](error_code ec, size_t n) {
            self->lingered_ += n;
            if (ec || self->lingered_ > kMaxLingerBytes) return self->close_now();
            self->linger();
        });
    }

    // Closing the socket ends every pending operation (operation_aborted);
    // their handlers then release the session.
    void close_now() {
        if (state_ == State::closed) return;
        auto self = this->shared_from_this();  // erase() below may drop the owning reference
        state_ = State::closed;
        if (awaiting_) end_exchange();
        deadline = Clock::time_point::max();
        error_code ec;
        socket().close(ec);
        worker_.sessions.erase(this);
    }

    std::shared_ptr<Core> core_;
    const EdgeSettings& settings_;
    Worker& worker_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::string address_;
    uint16_t client_port_;

    State state_ = State::idle;
    bool handed_over_ = false;  // the connection went to a WebSocket session
    bool first_request_ = true;
    bool keep_alive_ = true;
    bool http10_ = false;
    bool shutting_down_ = false;
    bool close_after_write_ = false;
    Clock::time_point started_{};
    ChannelStats* stats_ = nullptr;

    uint64_t current_id_ = 0;
    bool awaiting_ = false;
    std::weak_ptr<detail::Exchange> exchange_;
    std::optional<Response> inline_;
    bool inline_dropped_ = false;

    std::string head_;
    std::string body_;
    std::array<char, 4096> linger_buf_{};
    size_t lingered_ = 0;
};

}  // namespace

// ------------------------------------------------------------------ the server

struct EdgeServer::Impl {
    Impl(EdgeSettings s, metrics::Registry& r) : core(std::make_shared<Core>(std::move(s), r)) {}

    void do_accept() {
        const size_t w = next_worker;
        next_worker = (next_worker + 1) % workers.size();
        acceptor->async_accept(workers[w]->ioc,
                               [this, w](error_code ec, Socket socket) { on_accept(ec, std::move(socket), w); });
    }

    void on_accept(error_code ec, Socket socket, size_t w) {
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
            uint64_t n = 0;
            if (core->log_accept.allow(n)) lg.warn("accept failed", {{"error", ec.message()}, {"occurrences", n}});
            // Out of descriptors or memory: give closing connections a moment instead of spinning.
            if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
                ec == asio::error::no_memory) {
                backoff->expires_after(std::chrono::milliseconds(50));
                backoff->async_wait([this](error_code tec) {
                    if (!tec && acceptor->is_open()) do_accept();
                });
                return;
            }
            return do_accept();
        }
        admit(std::move(socket), *workers[w]);
        do_accept();
    }

    void admit(Socket socket, Worker& worker) {
        error_code ec;
        auto remote = socket.remote_endpoint(ec);
        if (ec) return;  // already gone
        auto addr = remote.address();
        if (addr.is_v6() && addr.to_v6().is_v4_mapped())
            addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
        std::string address = addr.to_string();

        const auto& s = core->settings;
        const bool over_total = core->open.load(std::memory_order_acquire) >= s.max_connections;
        if (over_total || !core->per_address.try_acquire(address)) {
            core->reject(Reject::too_many_connections);
            uint64_t n = 0;
            if (core->log_rejected_connection.allow(n))
                lg.warn("connection refused", {{"client", address},
                                               {"limit", over_total ? "max_connections" : "max_connections_per_ip"},
                                               {"occurrences", n}});
            socket.close(ec);
            return;
        }
        core->open.fetch_add(1, std::memory_order_acq_rel);
        core->connections_gauge.add(1);
        socket.set_option(tcp::no_delay(true), ec);

        std::shared_ptr<SessionBase> session;
        if (core->tls) {
            session = std::make_shared<Session<TlsStream>>(core, worker, std::move(socket), std::move(address),
                                                           remote.port());
        } else {
            session =
                std::make_shared<Session<Socket>>(core, worker, std::move(socket), std::move(address), remote.port());
        }
        asio::post(worker.ioc, [session = std::move(session)] { session->run(); });
    }

    // Waits until no connection is open, or the deadline.
    bool wait_drained(Clock::time_point deadline) {
        std::unique_lock lock(core->drain_mu);
        return core->drain_cv.wait_until(lock, deadline, [&] { return core->open.load() == 0; });
    }

    void each_session(void (SessionBase::*what)()) {
        for (auto& w : workers) {
            asio::post(w->ioc, [worker = w.get(), what] {
                for (auto& s : worker->snapshot()) (s.get()->*what)();
            });
        }
    }

    std::shared_ptr<Core> core;
    std::vector<std::unique_ptr<Worker>> workers;
    std::optional<tcp::acceptor> acceptor;      // on workers[0]
    std::optional<asio::steady_timer> backoff;  // on workers[0]
    size_t next_worker = 0;
    uint16_t port = 0;
    bool started = false;
    bool stopped = false;
    std::mutex post_mu;
    bool posts_open = false;  // guarded by post_mu: from start() until the workers stop
    size_t next_post = 0;     // guarded by post_mu
};

EdgeServer::EdgeServer(EdgeSettings settings, metrics::Registry& registry) {
    auto positive = [](std::chrono::milliseconds d, const char* name) {
        if (d.count() <= 0) throw std::invalid_argument(std::string("edge: ") + name + " must be > 0");
    };
    positive(settings.header_timeout, "header_timeout");
    positive(settings.body_timeout, "body_timeout");
    positive(settings.idle_timeout, "idle_timeout");
    positive(settings.request_timeout, "request_timeout");
    positive(settings.write_timeout, "write_timeout");
    if (settings.shutdown_timeout.count() < 0) throw std::invalid_argument("edge: shutdown_timeout must be >= 0");
    if (settings.cert_file.empty() != settings.key_file.empty())
        throw std::invalid_argument("edge: cert_file and key_file must be set together");
    if (settings.max_header_bytes < 64) throw std::invalid_argument("edge: max_header_bytes must be >= 64");
    if (settings.max_connections == 0) throw std::invalid_argument("edge: max_connections must be > 0");
    if (settings.backlog <= 0) throw std::invalid_argument("edge: backlog must be > 0");
    impl_ = std::make_unique<Impl>(std::move(settings), registry);
}

EdgeServer::~EdgeServer() { stop(); }

void EdgeServer::add_channel(ChannelRoute route) {
    if (impl_->started) throw std::logic_error("edge: add_channel() after start()");
    if (!is_channel_name(route.channel))
        throw std::invalid_argument("edge: invalid channel name '" + route.channel +
                                    "' (expected [a-z0-9][a-z0-9_-]{0,62})");
    if (impl_->core->channels.count(route.channel))
        throw std::invalid_argument("edge: channel '" + route.channel + "' registered twice");
    if (route.methods.empty()) throw std::invalid_argument("edge: channel '" + route.channel + "' takes no method");
    for (const auto& m : route.methods)
        if (!is_token(m)) throw std::invalid_argument("edge: invalid method '" + m + "'");
    if (!route.handler) throw std::invalid_argument("edge: channel '" + route.channel + "' has no handler");

    auto ch = std::make_unique<Channel>();
    ch->name = route.channel;
    ch->methods = std::move(route.methods);
    for (const auto& m : ch->methods) ch->allow += (ch->allow.empty() ? "" : ", ") + m;
    ch->handler = std::move(route.handler);
    if (route.rate_limit.per_second > 0) {
        double burst = route.rate_limit.burst > 0 ? route.rate_limit.burst : std::max(1.0, route.rate_limit.per_second);
        ch->limiter = std::make_unique<RateLimiter>(route.rate_limit.per_second, burst);
    }
    ch->stats = std::make_unique<ChannelStats>(impl_->core->registry, ch->name);
    impl_->core->channels.emplace(ch->name, std::move(ch));
}

void EdgeServer::add_websocket(WebSocketRoute route) {
    if (impl_->started) throw std::logic_error("edge: add_websocket() after start()");
    const std::string& p = route.prefix;
    const std::string_view inner = p.size() >= 3 ? std::string_view(p).substr(1, p.size() - 2) : std::string_view();
    const bool valid = p.size() >= 3 && p.front() == '/' && p.back() == '/' && inner.size() <= 63 &&
                       std::all_of(inner.begin(), inner.end(), [](char c) {
                           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
                       });
    if (!valid)
        throw std::invalid_argument("edge: invalid websocket prefix '" + p + "' (expected /[a-z0-9_-]{1,63}/)");
    if (p == kWebhooks) throw std::invalid_argument("edge: websocket prefix '" + p + "' is the webhooks' prefix");
    for (const auto& r : impl_->core->ws_routes)
        if (r->route.prefix == p) throw std::invalid_argument("edge: websocket prefix '" + p + "' registered twice");
    if (!route.accept) throw std::invalid_argument("edge: websocket prefix '" + p + "' has no accept function");
    if (route.max_message_bytes == 0 || route.max_queued_messages == 0 || route.idle_timeout.count() <= 0)
        throw std::invalid_argument("edge: websocket prefix '" + p + "': limits must be > 0");

    auto r = std::make_unique<WsRoute>();
    r->label = std::string(inner);
    metrics::Registry& reg = impl_->core->registry;
    r->connections = &reg.gauge("omnibus_edge_websocket_connections", "Open WebSocket connections, by route.",
                                {{"route", r->label}});
    r->received = &reg.counter("omnibus_edge_websocket_messages_total",
                               "WebSocket messages received from and sent to clients, by route and direction.",
                               {{"route", r->label}, {"direction", "in"}});
    r->sent = &reg.counter("omnibus_edge_websocket_messages_total",
                           "WebSocket messages received from and sent to clients, by route and direction.",
                           {{"route", r->label}, {"direction", "out"}});
    r->route = std::move(route);
    impl_->core->ws_routes.push_back(std::move(r));
}

void EdgeServer::start() {
    Impl& im = *impl_;
    if (im.started) throw std::logic_error("edge: start() called twice");
    const EdgeSettings& s = im.core->settings;
    const std::string where = s.host + ":" + std::to_string(s.port);

    if (!s.cert_file.empty()) {
        try {
            auto& ctx = im.core->tls.emplace(ssl::context::tls_server);
            ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
            ctx.use_certificate_chain_file(s.cert_file);
            ctx.use_private_key_file(s.key_file, ssl::context::pem);
            if (SSL_CTX_check_private_key(ctx.native_handle()) != 1)
                throw std::runtime_error("the private key does not match the certificate");
        } catch (const std::exception& e) {
            im.core->tls.reset();
            throw std::runtime_error("edge: cannot use TLS certificate " + s.cert_file + " and key " + s.key_file +
                                     ": " + e.what());
        }
    }

    unsigned threads = s.threads ? s.threads : std::max(1u, std::thread::hardware_concurrency());
    // The sweep's tick: a quarter of the shortest timeout, within [10 ms, 250 ms].
    auto shortest = std::min({s.header_timeout, s.body_timeout, s.idle_timeout, s.request_timeout, s.write_timeout});
    for (const auto& r : im.core->ws_routes)  // a WebSocket route pings at half its idle timeout
        shortest = std::min(shortest, r->route.idle_timeout / 2);
    const auto tick = std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(10),
                                                            std::chrono::milliseconds(250));
    for (unsigned i = 0; i < threads; ++i) im.workers.push_back(std::make_unique<Worker>(tick));

    try {
        asio::io_context& ioc = im.workers[0]->ioc;
        error_code ec;
        auto address = asio::ip::make_address(s.host, ec);
        tcp::endpoint endpoint;
        if (!ec) {
            endpoint = tcp::endpoint(address, s.port);
        } else {
            tcp::resolver resolver(ioc);
            auto results = resolver.resolve(s.host, std::to_string(s.port), ec);
            if (ec || results.empty())
                throw std::runtime_error("cannot resolve host: " + (ec ? ec.message() : std::string("no address")));
            endpoint = results.begin()->endpoint();
        }
        auto& acc = im.acceptor.emplace(ioc);
        auto check = [&](const char* step) {
            if (ec) throw std::runtime_error(std::string(step) + ": " + ec.message());
        };
        acc.open(endpoint.protocol(), ec);
        check("socket");
        acc.set_option(asio::socket_base::reuse_address(true), ec);
        check("SO_REUSEADDR");
        acc.bind(endpoint, ec);
        check("bind");
        acc.listen(s.backlog, ec);
        check("listen");
        im.port = acc.local_endpoint().port();
        im.backoff.emplace(ioc);
    } catch (const std::exception& e) {
        im.acceptor.reset();
        im.backoff.reset();
        im.workers.clear();
        im.core->tls.reset();
        throw std::runtime_error("edge: cannot listen on " + where + ": " + e.what());
    }

    im.started = true;
    {
        std::lock_guard lock(im.post_mu);
        im.posts_open = true;
    }
    im.do_accept();
    for (auto& w : im.workers) w->start_sweep();
    for (auto& w : im.workers) {
        w->thread = std::thread([worker = w.get()] {
            for (;;) {
                try {
                    worker->ioc.run();
                    return;
                } catch (const std::exception& e) {
                    lg.error("edge worker caught an exception; continuing", {{"error", e.what()}});
                }
            }
        });
    }
    lg.info("listening", {{"host", s.host},
                          {"port", static_cast<unsigned>(im.port)},
                          {"tls", im.core->tls.has_value()},
                          {"threads", threads},
                          {"channels", static_cast<unsigned long>(im.core->channels.size())}});
}

void EdgeServer::stop() {
    Impl& im = *impl_;
    if (!im.started || im.stopped) return;
    im.stopped = true;
    Core& core = *im.core;
    const auto began = Clock::now();
    core.stopping.store(true, std::memory_order_release);
    const size_t open_at_stop = core.open.load();
    lg.info("stopping", {{"connections", static_cast<unsigned long>(open_at_stop)}});

    asio::post(im.workers[0]->ioc, [&im] {
        error_code ec;
        im.acceptor->close(ec);
        im.backoff->cancel();
    });
    im.each_session(&SessionBase::begin_shutdown);
    bool drained = im.wait_drained(began + core.settings.shutdown_timeout);
    size_t expired = 0;
    if (!drained) {
        expired = core.open.load();
        im.each_session(&SessionBase::expire);
        drained = im.wait_drained(Clock::now() + kExpireGrace + std::chrono::milliseconds(250));
    }

    {
        std::lock_guard lock(im.post_mu);
        im.posts_open = false;
    }
    for (auto& w : im.workers) {
        w->guard.reset();
        w->ioc.stop();
    }
    for (auto& w : im.workers)
        if (w->thread.joinable()) w->thread.join();
    // From here on no Responder reaches a session; then the io_contexts (and
    // the sessions still owned by their pending operations) go away.
    for (auto& w : im.workers) {
        std::lock_guard lock(w->gate->mu);
        w->gate->open = false;
    }
    im.backoff.reset();
    im.acceptor.reset();
    im.workers.clear();

    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began).count();
    lg.info("stopped", {{"connections_at_stop", static_cast<unsigned long>(open_at_stop)},
                        {"cut_off_at_shutdown_timeout", static_cast<unsigned long>(expired)},
                        {"forced", !drained},
                        {"took_ms", static_cast<long long>(ms)}});
}

bool EdgeServer::post(std::function<void()> fn) {
    Impl& im = *impl_;
    std::lock_guard lock(im.post_mu);
    if (!im.posts_open) return false;
    Worker& w = *im.workers[im.next_post];
    im.next_post = (im.next_post + 1) % im.workers.size();
    asio::post(w.ioc, std::move(fn));
    return true;
}

uint16_t EdgeServer::port() const { return impl_->port; }
bool EdgeServer::tls() const { return !impl_->core->settings.cert_file.empty(); }
size_t EdgeServer::connections() const { return impl_->core->open.load(std::memory_order_acquire); }
const EdgeSettings& EdgeServer::settings() const { return impl_->core->settings; }

}  // namespace omnibus::edge
