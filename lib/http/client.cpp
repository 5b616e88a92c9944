// Asynchronous outbound HTTP on libcurl's multi interface (see client.h). The one file that
// includes <curl/curl.h>.
#include "http/client.h"

#include <curl/curl.h>
#include <pthread.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "encoding/http_token.h"
#include "http/response_head.h"
#include "log/log.h"
#include "metrics/metrics.h"

#ifndef OMNIBUS_VERSION
#error "OMNIBUS_VERSION must be defined by the build"
#endif

namespace omnibus::http {
namespace {

constexpr log::Logger lg{"http"};
using Clock = std::chrono::steady_clock;
constexpr const char* stopped_error = "client stopped";

struct EasyDeleter {
    void operator()(CURL* p) const { curl_easy_cleanup(p); }
};
struct MultiDeleter {
    void operator()(CURLM* p) const { curl_multi_cleanup(p); }
};
struct SlistDeleter {
    void operator()(curl_slist* p) const { curl_slist_free_all(p); }
};
using EasyPtr = std::unique_ptr<CURL, EasyDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// The metric label of each way a request can end.
enum class Outcome { s1xx, s2xx, s3xx, s4xx, s5xx, other_status, timeout, too_large, error, stopped, count };
constexpr std::array<const char*, static_cast<size_t>(Outcome::count)> outcome_names{
    "1xx", "2xx", "3xx", "4xx", "5xx", "other", "timeout", "too_large", "error", "stopped"};

Outcome status_outcome(int status) {
    switch (status / 100) {
        case 1: return Outcome::s1xx;
        case 2: return Outcome::s2xx;
        case 3: return Outcome::s3xx;
        case 4: return Outcome::s4xx;
        case 5: return Outcome::s5xx;
        default: return Outcome::other_status;
    }
}

using encoding::iequals;
using encoding::is_token;

// No CR, LF or NUL: a value that cannot split the request.
bool is_safe_value(std::string_view s) { return s.find_first_of(std::string_view("\r\n\0", 3)) == s.npos; }

void curl_init_once() {
    // Thread-safe in curl >= 7.84 (the "threadsafe" feature) and done once here regardless.
    static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) throw std::runtime_error(std::string("curl_global_init: ") + curl_easy_strerror(rc));
}

}  // namespace

std::string default_user_agent() { return "omnibus/" OMNIBUS_VERSION; }

std::optional<std::string_view> ClientResponse::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return std::string_view(v);
    return std::nullopt;
}

namespace {

// One request from send() to its callback. Owned by the queue, then by Impl::active (keyed by
// deadline) while curl works on it; heap-allocated and never moved, because curl holds
// pointers into it (the body, the error buffer, the Transfer itself as CURLOPT_PRIVATE).
struct Transfer {
    Transfer(ClientRequest r, std::function<void(ClientResponse)> d, const ClientOptions& o)
        : req(std::move(r)), done(std::move(d)), head(o.max_response_headers), max_body(o.max_response_body) {}

    ClientRequest req;
    std::function<void(ClientResponse)> done;
    Clock::time_point sent = Clock::now();
    SlistPtr header_list;
    ResponseHead head;
    std::string body;
    std::size_t max_body;
    bool body_too_large = false;
    bool head_too_large = false;
    char errbuf[CURL_ERROR_SIZE] = {};
    EasyPtr easy;  // after what it points at, so it is cleaned up first
    std::multimap<Clock::time_point, std::unique_ptr<Transfer>>::iterator slot;  // in Impl::active
};

size_t on_body(char* data, size_t size, size_t nmemb, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    size_t len = size * nmemb;
    if (len > t->max_body - t->body.size()) {  // body.size() <= max_body always holds
        t->body_too_large = true;
        return 0;  // curl aborts the transfer with CURLE_WRITE_ERROR
    }
    t->body.append(data, len);
    return len;
}

size_t on_header(char* data, size_t size, size_t nmemb, void* userdata) {
    auto* t = static_cast<Transfer*>(userdata);
    size_t len = size * nmemb;
    if (!t->head.feed(std::string_view(data, len))) {
        t->head_too_large = true;
        return 0;
    }
    return len;
}

}  // namespace

struct Client::Impl {
    using Active = std::multimap<Clock::time_point, std::unique_ptr<Transfer>>;

    Impl(ClientOptions o, metrics::Registry& registry, std::string n);
    void run();                                              // the client thread
    void admit();                                            // client thread: queue → curl
    void start(std::unique_ptr<Transfer> t);                 // client thread
    void reap();                                             // client thread: curl's finished transfers
    void expire();                                           // client thread: deadlines curl does not enforce
    int poll_timeout_ms() const;                             // client thread
    void shut_down();                                        // client thread: fail everything left
    std::unique_ptr<Transfer> detach(Transfer* t);           // client thread: out of curl and active
    void complete(std::unique_ptr<Transfer> t, ClientResponse r, Outcome o);  // client thread
    void finish_inline(std::unique_ptr<Transfer> t);         // caller's thread, after stop()
    void run_callback(std::function<void(ClientResponse)>& done, ClientResponse r);

    const ClientOptions options;
    const std::string name;
    MultiPtr multi;

    std::array<metrics::Counter*, static_cast<size_t>(Outcome::count)> outcomes{};
    metrics::Histogram* duration = nullptr;
    metrics::Gauge* in_flight_gauge = nullptr;
    std::atomic<std::size_t> in_flight{0};

    std::mutex mu;
    std::vector<std::unique_ptr<Transfer>> queue;  // guarded by mu
    bool stopped = false;                          // guarded by mu; once true, nothing is queued
    std::atomic<bool> stopping{false};             // mirrors `stopped` for the client thread's loop

    Active active;  // client thread
    CURLMcode last_multi_error = CURLM_OK;  // client thread: log each new multi failure once

    std::mutex join_mu;  // serialises joins of `thread` among concurrent stop() calls
    std::thread thread;
    std::thread::id thread_id;
};

Client::Impl::Impl(ClientOptions o, metrics::Registry& registry, std::string n)
    : options(std::move(o)), name(std::move(n)) {
    if (!is_token(name) || name.size() > 63)
        throw std::invalid_argument("http client name must be a token of at most 63 characters: \"" + name + "\"");
    if (options.max_response_body == 0)
        throw std::invalid_argument("http client " + name + ": max_response_body must be > 0");
    if (options.max_response_headers == 0)
        throw std::invalid_argument("http client " + name + ": max_response_headers must be > 0");
    if (options.max_connections_per_host < 0 || options.max_total_connections < 0)
        throw std::invalid_argument("http client " + name + ": connection limits must be >= 0 (0: no limit)");
    if (options.connect_timeout.count() <= 0)
        throw std::invalid_argument("http client " + name + ": connect_timeout must be > 0");
    if (!is_safe_value(options.user_agent))
        throw std::invalid_argument("http client " + name + ": user_agent contains CR, LF or NUL");

    curl_init_once();
    multi.reset(curl_multi_init());
    if (!multi) throw std::runtime_error("http client " + name + ": curl_multi_init failed");
    // Multiplex on HTTP/2 connections; on HTTP/1.1, reuse kept-alive connections one request
    // at a time, opening up to the per-host limit (further requests wait inside curl).
    curl_multi_setopt(multi.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, options.max_connections_per_host);
    curl_multi_setopt(multi.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_total_connections);
    // The idle cache would otherwise follow the number of easy handles added, which drops to
    // zero between bursts and would close every kept-alive connection.
    if (options.max_total_connections > 0)
        curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, options.max_total_connections);

    metrics::Labels labels{{"client", name}};
    for (size_t i = 0; i < outcomes.size(); ++i)
        outcomes[i] = &registry.counter("omnibus_http_client_requests_total",
                                        "Outbound HTTP requests by outcome: status class, or how they failed",
                                        {{"client", name}, {"outcome", outcome_names[i]}});
    duration = &registry.histogram("omnibus_http_client_request_duration_seconds",
                                   "Time from send() to the completion callback (stopped requests excluded)",
                                   metrics::latency_buckets(), labels);
    in_flight_gauge =
        &registry.gauge("omnibus_http_client_in_flight", "Outbound HTTP requests whose callback has not run", labels);
}

void Client::Impl::run() {
    // Linux limits thread names to 15 characters.
    pthread_setname_np(pthread_self(), ("http-" + name).substr(0, 15).c_str());
    for (;;) {
        admit();
        if (stopping.load(std::memory_order_acquire)) break;
        int running = 0;
        CURLMcode mc = curl_multi_perform(multi.get(), &running);
        if (mc != CURLM_OK && mc != last_multi_error)
            lg.error("curl_multi_perform failed", {{"client", name}, {"error", curl_multi_strerror(mc)}});
        last_multi_error = mc;
        reap();
        expire();
        // Returns early on socket activity, on curl's own timers and on curl_multi_wakeup().
        mc = curl_multi_poll(multi.get(), nullptr, 0, poll_timeout_ms(), nullptr);
        if (mc != CURLM_OK && mc != last_multi_error)
            lg.error("curl_multi_poll failed", {{"client", name}, {"error", curl_multi_strerror(mc)}});
        last_multi_error = mc;
    }
    shut_down();
}

void Client::Impl::admit() {
    std::vector<std::unique_ptr<Transfer>> batch;
    {
        std::lock_guard lock(mu);
        batch.swap(queue);
    }
    for (auto& t : batch) start(std::move(t));
}

void Client::Impl::start(std::unique_ptr<Transfer> owned) {
    Transfer& t = *owned;
    const ClientRequest& req = t.req;
    auto reject = [&](std::string why) {
        ClientResponse r;
        r.error = std::move(why);
        complete(std::move(owned), std::move(r), Outcome::error);
    };
    if (req.timeout.count() <= 0) return reject("request timeout must be > 0");
    if (!is_token(req.method)) return reject("request method is not a token");
    bool has_expect = false, has_content_type = false;
    for (const auto& [k, v] : req.headers) {
        // The name is safe to report; the value may be a credential.
        if (!is_token(k)) return reject("request header name is not a token");
        if (!is_safe_value(v)) return reject("request header " + k + " has CR, LF or NUL in its value");
        has_expect = has_expect || iequals(k, "expect");
        has_content_type = has_content_type || iequals(k, "content-type");
    }

    t.easy.reset(curl_easy_init());
    if (!t.easy) return reject("curl_easy_init failed");
    CURL* e = t.easy.get();
    CURLcode rc = CURLE_OK;
    auto check = [&rc](CURLcode c) {
        if (rc == CURLE_OK) rc = c;
    };
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(t.sent + req.timeout - Clock::now());
    long timeout_ms = remaining.count() > 0 ? static_cast<long>(remaining.count()) : 1L;

    check(curl_easy_setopt(e, CURLOPT_PRIVATE, &t));
    check(curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf));
    check(curl_easy_setopt(e, CURLOPT_URL, req.url.c_str()));
    check(curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https"));
    check(curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
    check(curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L));
    check(curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L));
    check(curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L));
    check(curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L));
    // A timed-out or stopped request must not wait for its threaded DNS lookup to finish:
    // that would hold up the client thread, and so every other request.
    check(curl_easy_setopt(e, CURLOPT_QUICK_EXIT, 1L));
    check(curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms));
    check(curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count())));
    check(curl_easy_setopt(e, CURLOPT_USERAGENT, options.user_agent.c_str()));
    check(curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body));
    check(curl_easy_setopt(e, CURLOPT_WRITEDATA, &t));
    check(curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header));
    check(curl_easy_setopt(e, CURLOPT_HEADERDATA, &t));
    if (iequals(std::string_view(req.url).substr(0, 8), "https://")) {
        // HTTP/2 when ALPN offers it. A new request then waits for a connection being set up
        // to learn whether it multiplexes, rather than opening one more. Not checked: a curl
        // built without HTTP/2 refuses it and speaks HTTP/1.1, which is fine.
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
        check(curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L));
    } else {
        // Cleartext is HTTP/1.1 (no h2c). Saying so keeps curl from treating the connection
        // as possibly multiplexing, which with PIPEWAIT would hold every other request to the
        // host until the first response arrived.
        check(curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
    }

    bool sends_body = !req.body.empty() || req.method == "POST";
    if (req.method == "HEAD") {
        check(curl_easy_setopt(e, CURLOPT_NOBODY, 1L));
    } else {
        // Checked again as the body arrives (chunked bodies announce no length); not for
        // HEAD, whose Content-Length describes a body that never comes.
        check(curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options.max_response_body)));
        if (sends_body) {
            // The body stays in `t` until the transfer is gone: no copy.
            check(curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data()));
            check(curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size())));
            if (req.method != "POST") check(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str()));
        } else {
            check(curl_easy_setopt(e, CURLOPT_HTTPGET, 1L));
            if (req.method != "GET") check(curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str()));
        }
    }

    curl_slist* list = nullptr;
    auto append = [&list](const std::string& line) {
        curl_slist* next = curl_slist_append(list, line.c_str());
        if (!next) return false;
        list = next;
        return true;
    };
    bool listed = true;
    for (const auto& [k, v] : req.headers)
        listed = listed && append(v.empty() ? k + ";" : k + ": " + v);  // "Name;" sends an empty value
    // curl sends "Expect: 100-continue" before large bodies and then waits a round trip (or
    // 1 s) for the server's go-ahead; provider APIs answer at once, so never ask.
    if (sends_body && !has_expect) listed = listed && append("Expect:");
    // curl labels a body application/x-www-form-urlencoded unless told otherwise; a body the
    // caller did not label goes out unlabelled.
    if (sends_body && !has_content_type) listed = listed && append("Content-Type:");
    t.header_list.reset(list);
    if (!listed) return reject("out of memory building request headers");
    if (list) check(curl_easy_setopt(e, CURLOPT_HTTPHEADER, list));
    if (rc != CURLE_OK) return reject(std::string("curl_easy_setopt: ") + curl_easy_strerror(rc));

    CURLMcode mc = curl_multi_add_handle(multi.get(), e);
    if (mc != CURLM_OK) return reject(std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
    Clock::time_point deadline = t.sent + req.timeout;
    t.slot = active.emplace(deadline, std::move(owned));
}

void Client::Impl::reap() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi.get(), &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURLcode rc = msg->data.result;  // read before detach(): removing the handle frees msg
        char* priv = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        auto* raw = reinterpret_cast<Transfer*>(priv);
        long status = 0;
        curl_easy_getinfo(raw->easy.get(), CURLINFO_RESPONSE_CODE, &status);
        std::unique_ptr<Transfer> t = detach(raw);

        ClientResponse r;
        Outcome outcome = Outcome::error;
        if (rc == CURLE_OK && status > 0) {
            r.status = static_cast<int>(status);
            r.headers = t->head.take_fields();
            r.body = std::move(t->body);
            outcome = status_outcome(r.status);
        } else if (t->body_too_large || rc == CURLE_FILESIZE_EXCEEDED) {
            r.error = "response body larger than max_response_body (" + std::to_string(options.max_response_body) +
                      " bytes)";
            outcome = Outcome::too_large;
        } else if (t->head_too_large) {
            r.error = "response headers larger than max_response_headers (" +
                      std::to_string(options.max_response_headers) + " bytes)";
            outcome = Outcome::too_large;
        } else if (rc == CURLE_OK) {
            r.error = "no HTTP status in the response";
        } else {
            r.error = t->errbuf[0] ? std::string(t->errbuf) : std::string(curl_easy_strerror(rc));
            r.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
            if (r.timed_out) outcome = Outcome::timeout;
        }
        complete(std::move(t), std::move(r), outcome);
    }
}

void Client::Impl::expire() {
    // curl enforces CURLOPT_TIMEOUT_MS only once a transfer has a connection; one still
    // waiting for a free connection (per-host limit) is timed out here.
    auto now = Clock::now();
    while (!active.empty() && active.begin()->first <= now) {
        std::unique_ptr<Transfer> t = detach(active.begin()->second.get());
        ClientResponse r;
        r.timed_out = true;
        r.error = "timed out after " + std::to_string(t->req.timeout.count()) + " ms";
        complete(std::move(t), std::move(r), Outcome::timeout);
    }
}

int Client::Impl::poll_timeout_ms() const {
    // curl_multi_poll also wakes for curl's own timers; this only adds our deadlines.
    constexpr long idle_ms = 1000;
    if (active.empty()) return idle_ms;
    auto until = std::chrono::ceil<std::chrono::milliseconds>(active.begin()->first - Clock::now()).count();
    if (until < 0) until = 0;
    return static_cast<int>(until < idle_ms ? until : idle_ms);
}

std::unique_ptr<Transfer> Client::Impl::detach(Transfer* t) {
    curl_multi_remove_handle(multi.get(), t->easy.get());
    std::unique_ptr<Transfer> owned = std::move(t->slot->second);
    active.erase(owned->slot);
    return owned;
}

void Client::Impl::shut_down() {
    std::vector<std::unique_ptr<Transfer>> never_started;
    {
        std::lock_guard lock(mu);
        never_started.swap(queue);  // `stopped` is set: nothing more arrives
    }
    size_t n = active.size() + never_started.size();
    if (n > 0) lg.info("client stopped with requests unfinished", {{"client", name}, {"requests", n}});
    while (!active.empty()) {
        std::unique_ptr<Transfer> t = detach(active.begin()->second.get());
        ClientResponse r;
        r.error = stopped_error;
        complete(std::move(t), std::move(r), Outcome::stopped);
    }
    for (auto& t : never_started) {
        ClientResponse r;
        r.error = stopped_error;
        complete(std::move(t), std::move(r), Outcome::stopped);
    }
}

void Client::Impl::complete(std::unique_ptr<Transfer> t, ClientResponse r, Outcome o) {
    r.elapsed = Clock::now() - t->sent;
    outcomes[static_cast<size_t>(o)]->inc();
    if (o != Outcome::stopped) duration->observe(std::chrono::duration<double>(r.elapsed).count());
    std::function<void(ClientResponse)> done = std::move(t->done);
    t.reset();  // the easy handle and buffers go before the callback runs
    run_callback(done, std::move(r));
    in_flight.fetch_sub(1, std::memory_order_acq_rel);
    in_flight_gauge->add(-1);
}

void Client::Impl::finish_inline(std::unique_ptr<Transfer> t) {
    ClientResponse r;
    r.error = stopped_error;
    r.elapsed = Clock::now() - t->sent;
    outcomes[static_cast<size_t>(Outcome::stopped)]->inc();
    std::function<void(ClientResponse)> done = std::move(t->done);
    t.reset();
    run_callback(done, std::move(r));
}

void Client::Impl::run_callback(std::function<void(ClientResponse)>& done, ClientResponse r) {
    if (!done) return;
    try {
        done(std::move(r));
    } catch (const std::exception& e) {
        lg.error("request callback threw", {{"client", name}, {"error", e.what()}});
    } catch (...) {
        lg.error("request callback threw", {{"client", name}, {"error", "unknown exception"}});
    }
}

Client::Client(ClientOptions options, metrics::Registry& metrics, std::string name)
    : impl_(std::make_unique<Impl>(std::move(options), metrics, std::move(name))) {
    impl_->thread = std::thread([impl = impl_.get()] { impl->run(); });
    impl_->thread_id = impl_->thread.get_id();
}

Client::~Client() { stop(); }

void Client::send(ClientRequest request, std::function<void(ClientResponse)> done) {
    auto t = std::make_unique<Transfer>(std::move(request), std::move(done), impl_->options);
    {
        std::lock_guard lock(impl_->mu);
        if (!impl_->stopped) {
            impl_->in_flight.fetch_add(1, std::memory_order_acq_rel);
            impl_->in_flight_gauge->add(1);
            impl_->queue.push_back(std::move(t));
        }
    }
    if (t) {
        impl_->finish_inline(std::move(t));
        return;
    }
    curl_multi_wakeup(impl_->multi.get());
}

void Client::stop() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopped = true;
    }
    impl_->stopping.store(true, std::memory_order_release);
    curl_multi_wakeup(impl_->multi.get());
    if (std::this_thread::get_id() == impl_->thread_id) return;  // from a callback: run() finishes up
    std::lock_guard lock(impl_->join_mu);
    if (impl_->thread.joinable()) impl_->thread.join();
}

std::size_t Client::in_flight() const { return impl_->in_flight.load(std::memory_order_acquire); }

}  // namespace omnibus::http
