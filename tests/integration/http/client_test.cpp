// The outbound HTTP client against a real cpp-httplib server on loopback: what is sent arrives,
// answers come back, timeouts, refused connections, body limits, keep-alive under concurrency,
// and stop() with requests still waiting.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/retry_after.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "support/metric_value.h"
#include "support/wait.h"

using namespace omnibus;
using namespace std::chrono_literals;
using http::Client;
using http::ClientOptions;
using http::ClientRequest;
using http::ClientResponse;
using test::wait_until;

namespace {

// Holds slow handlers until opened (at the latest when the server stops), so a test never
// waits for a server-side sleep to end.
class Gate {
public:
    void open() {
        std::lock_guard lock(mu_);
        open_ = true;
        cv_.notify_all();
    }
    void wait(std::chrono::milliseconds limit) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, limit, [this] { return open_; });
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool open_ = false;
};

struct Seen {
    std::string method;
    std::string path;
    httplib::Headers headers;
    std::string body;
};

// A cpp-httplib server on a free loopback port with the routes the tests call.
class TestServer {
public:
    TestServer() {
        srv_.new_task_queue = [] { return new httplib::ThreadPool(40); };
        srv_.set_tcp_nodelay(true);
        srv_.set_keep_alive_max_count(100000);
        srv_.set_keep_alive_timeout(2);
        srv_.set_payload_max_length(16 << 20);
        srv_.set_socket_options([this](int sock) {
            int yes = 1;
            setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
            listen_fd_ = sock;
        });

        auto echo = [this](const httplib::Request& req, httplib::Response& res) {
            {
                std::lock_guard lock(mu_);
                seen_.push_back({req.method, req.path, req.headers, req.body});
            }
            res.status = 201;
            res.set_header("X-Echo-Method", req.method);
            res.set_header("X-Multi", "first");
            res.set_header("X-Multi", "second");
            res.set_content("got " + std::to_string(req.body.size()) + " bytes", "text/plain");
        };
        srv_.Get("/echo", echo);
        srv_.Post("/echo", echo);
        srv_.Put("/echo", echo);
        srv_.Patch("/echo", echo);
        srv_.Delete("/echo", echo);

        srv_.Get("/ok", [this](const httplib::Request& req, httplib::Response& res) {
            {
                std::lock_guard lock(mu_);
                remote_ports_.insert(req.remote_port);
            }
            res.set_content("ok", "text/plain");
        });
        srv_.Get("/limited", [](const httplib::Request&, httplib::Response& res) {
            res.status = 429;
            res.set_header("Retry-After", "7");
            res.set_content("{\"error\":\"slow down\"}", "application/json");
        });
        srv_.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
            slow_arrived_.fetch_add(1);
            gate_.wait(10s);
            res.set_content("late", "text/plain");
        });
        srv_.Get("/fat-headers", [](const httplib::Request&, httplib::Response& res) {
            res.set_header("X-Fat", std::string(4096, 'h'));
            res.set_content("ok", "text/plain");
        });
        srv_.Get("/big", [](const httplib::Request& req, httplib::Response& res) {
            res.set_content(std::string(std::stoul(req.get_param_value("n")), 'x'), "text/plain");
        });
        srv_.Get("/big-chunked", [](const httplib::Request& req, httplib::Response& res) {
            size_t n = std::stoul(req.get_param_value("n"));
            res.set_chunked_content_provider("text/plain", [n](size_t offset, httplib::DataSink& sink) {
                if (offset >= n) {
                    sink.done();
                    return true;
                }
                std::string chunk(std::min<size_t>(512, n - offset), 'y');
                return sink.write(chunk.data(), chunk.size());
            });
        });

        port_ = srv_.bind_to_any_port("127.0.0.1");
        REQUIRE(port_ > 0);
        // cpp-httplib (as Debian builds it) listens with a backlog of 5; a burst of new
        // connections would then wait for SYN retransmits. Listening again raises it.
        REQUIRE(listen_fd_ >= 0);
        REQUIRE(::listen(listen_fd_, 256) == 0);
        thread_ = std::thread([this] { srv_.listen_after_bind(); });
        REQUIRE(wait_until([this] { return srv_.is_running(); }, 5s));
    }
    ~TestServer() {
        gate_.open();
        srv_.stop();
        thread_.join();
    }

    std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
    std::vector<Seen> seen() {
        std::lock_guard lock(mu_);
        return seen_;
    }
    std::set<int> remote_ports() {
        std::lock_guard lock(mu_);
        return remote_ports_;
    }
    void forget_ports() {
        std::lock_guard lock(mu_);
        remote_ports_.clear();
    }
    int slow_arrived() const { return slow_arrived_.load(); }

private:
    httplib::Server srv_;
    int port_ = 0;
    int listen_fd_ = -1;
    std::thread thread_;
    Gate gate_;
    std::atomic<int> slow_arrived_{0};
    std::mutex mu_;
    std::vector<Seen> seen_;
    std::set<int> remote_ports_;
};

// Sends one request and waits (bounded) for its answer.
ClientResponse call(Client& client, ClientRequest req, std::chrono::milliseconds limit = 10s) {
    auto promise = std::make_shared<std::promise<ClientResponse>>();
    auto future = promise->get_future();
    client.send(std::move(req), [promise](ClientResponse r) { promise->set_value(std::move(r)); });
    REQUIRE(future.wait_for(limit) == std::future_status::ready);
    return future.get();
}

ClientRequest get(std::string url, std::chrono::milliseconds timeout = 10s) {
    ClientRequest r;
    r.method = "GET";
    r.url = std::move(url);
    r.timeout = timeout;
    return r;
}

// The value of one series by its exact rendered name and labels; -1 when absent.
double metric(const metrics::Registry& registry, const std::string& series) {
    return omnibus::test::metric_value(registry, series);
}

double outcome_count(const metrics::Registry& registry, const std::string& client, const std::string& outcome) {
    return metric(registry,
                  "omnibus_http_client_requests_total{client=\"" + client + "\",outcome=\"" + outcome + "\"}");
}

// A loopback port bound but not listening: connecting to it is refused, and no other test can
// take the port while this holds it.
class RefusingPort {
public:
    RefusingPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        port_ = ntohs(addr.sin_port);
    }
    ~RefusingPort() { ::close(fd_); }
    int port() const { return port_; }

private:
    int fd_ = -1;
    int port_ = 0;
};

std::string header_of(const httplib::Headers& h, const std::string& name) {
    auto it = h.find(name);
    return it == h.end() ? std::string("<absent>") : it->second;
}

}  // namespace

TEST_CASE("method, headers and body arrive as sent, and status, headers and body come back") {
    TestServer server;
    metrics::Registry registry;
    std::thread::id callback_thread;
    Client client({}, registry, "echo");

    ClientRequest req;
    req.method = "PUT";
    req.url = server.url("/echo");
    req.headers = {{"Authorization", "Bearer not-a-real-token"},
                   {"Content-Type", "application/json"},
                   {"X-Custom", "value with  spaces"},
                   {"X-Empty", ""}};  // cpp-httplib drops empty fields: sent, but not checked below
    req.body = std::string("{\"text\":\"ol\xc3\xa1\"}\0tail", 20);  // UTF-8 and a NUL byte

    auto promise = std::make_shared<std::promise<ClientResponse>>();
    auto future = promise->get_future();
    client.send(req, [promise, &callback_thread](ClientResponse r) {
        callback_thread = std::this_thread::get_id();
        promise->set_value(std::move(r));
    });
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    ClientResponse r = future.get();

    INFO("error: " << r.error);
    CHECK(r.error.empty());
    CHECK_FALSE(r.timed_out);
    CHECK(r.status == 201);
    CHECK(r.body == "got 20 bytes");
    CHECK(r.header("x-echo-method") == std::optional<std::string_view>("PUT"));
    CHECK(r.header("X-Echo-Method") == std::optional<std::string_view>("PUT"));
    CHECK(r.header("content-type") == std::optional<std::string_view>("text/plain"));
    CHECK_FALSE(r.header("x-absent"));
    std::vector<std::string> multi;
    for (const auto& [k, v] : r.headers) {
        for (char c : k) CHECK_FALSE((c >= 'A' && c <= 'Z'));
        if (k == "x-multi") multi.push_back(v);
    }
    CHECK(multi == std::vector<std::string>{"first", "second"});
    CHECK(r.elapsed > 0ns);
    CHECK(callback_thread != std::this_thread::get_id());

    auto seen = server.seen();
    REQUIRE(seen.size() == 1);
    CHECK(seen[0].method == "PUT");
    CHECK(seen[0].path == "/echo");
    CHECK(seen[0].body == req.body);
    CHECK(header_of(seen[0].headers, "Authorization") == "Bearer not-a-real-token");
    CHECK(header_of(seen[0].headers, "Content-Type") == "application/json");
    CHECK(header_of(seen[0].headers, "X-Custom") == "value with  spaces");
    CHECK(header_of(seen[0].headers, "Content-Length") == "20");
    CHECK(header_of(seen[0].headers, "User-Agent") == http::default_user_agent());
    CHECK(header_of(seen[0].headers, "Expect") == "<absent>");
    CHECK(outcome_count(registry, "echo", "2xx") == 1);
}

TEST_CASE("GET, DELETE and bodyless POST send what their method implies") {
    TestServer server;
    metrics::Registry registry;
    Client client({}, registry, "methods");

    CHECK(call(client, get(server.url("/echo"))).status == 201);
    ClientRequest del;
    del.method = "DELETE";
    del.url = server.url("/echo");
    CHECK(call(client, del).status == 201);
    ClientRequest post;
    post.url = server.url("/echo");
    CHECK(call(client, post).status == 201);
    ClientRequest patch;
    patch.method = "PATCH";
    patch.url = server.url("/echo");
    patch.body = "{\"a\":1}";
    patch.headers = {{"User-Agent", "custom-agent/1"}};
    CHECK(call(client, patch).status == 201);

    ClientRequest head = get(server.url("/big?n=5000000"));
    head.method = "HEAD";  // its Content-Length is over max_response_body, but no body comes
    ClientResponse r = call(client, head);
    CHECK(r.status == 200);
    CHECK(r.body.empty());
    CHECK(r.header("content-length") == std::optional<std::string_view>("5000000"));

    auto seen = server.seen();
    REQUIRE(seen.size() == 4);
    CHECK(seen[0].method == "GET");
    CHECK(seen[0].body.empty());
    CHECK(header_of(seen[0].headers, "Content-Length") == "<absent>");
    CHECK(seen[1].method == "DELETE");
    CHECK(seen[2].method == "POST");
    CHECK(header_of(seen[2].headers, "Content-Length") == "0");
    CHECK(seen[3].method == "PATCH");
    CHECK(seen[3].body == "{\"a\":1}");
    CHECK(header_of(seen[3].headers, "User-Agent") == "custom-agent/1");
}

TEST_CASE("a large POST body goes out without Expect: 100-continue, unless the caller asks for it") {
    TestServer server;
    metrics::Registry registry;
    Client client({}, registry, "expect");

    ClientRequest req;
    req.url = server.url("/echo");
    req.body = std::string(3 << 20, 'b');  // curl asks for 100-continue above 1 MiB by default
    ClientResponse r = call(client, req);
    CHECK(r.status == 201);
    CHECK(r.body == "got " + std::to_string(3 << 20) + " bytes");

    req.body = "small";
    req.headers = {{"Expect", "100-continue"}};
    r = call(client, req);  // the server answers 100 Continue, then 201: only the 201 counts
    CHECK(r.status == 201);
    CHECK(r.header("x-echo-method") == std::optional<std::string_view>("POST"));

    auto seen = server.seen();
    REQUIRE(seen.size() == 2);
    CHECK(header_of(seen[0].headers, "Expect") == "<absent>");
    CHECK(header_of(seen[0].headers, "Content-Type") == "<absent>");  // not curl's form default
    CHECK(seen[0].body.size() == (3u << 20));
    CHECK(header_of(seen[1].headers, "Expect") == "100-continue");
}

TEST_CASE("429 comes back as an answer and its Retry-After is read through header()") {
    TestServer server;
    metrics::Registry registry;
    Client client({}, registry, "limited");

    ClientResponse r = call(client, get(server.url("/limited")));
    CHECK(r.status == 429);
    CHECK(r.error.empty());
    CHECK(r.body == "{\"error\":\"slow down\"}");
    auto retry_after = r.header("retry-after");
    REQUIRE(retry_after);
    CHECK(http::parse_retry_after(*retry_after, std::chrono::system_clock::now()) == std::chrono::seconds(7));
    CHECK(outcome_count(registry, "limited", "4xx") == 1);
    CHECK(outcome_count(registry, "limited", "2xx") == 0);
}

TEST_CASE("a server slower than the request timeout gives timed_out with status 0, on time") {
    TestServer server;
    metrics::Registry registry;
    Client client({}, registry, "slow");

    ClientResponse r = call(client, get(server.url("/slow"), 300ms), 5s);
    INFO("error: " << r.error);
    CHECK(r.timed_out);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
    CHECK(r.body.empty());
    CHECK(r.elapsed >= 290ms);  // curl's timers have millisecond granularity
    CHECK(r.elapsed < 3s);
    CHECK(outcome_count(registry, "slow", "timeout") == 1);
}

TEST_CASE("requests waiting for a free connection time out too") {
    TestServer server;
    metrics::Registry registry;
    ClientOptions options;
    options.max_connections_per_host = 1;
    Client client(options, registry, "queued");

    // The first holds the only connection (until the Client stops); the second never gets one.
    auto second = std::make_shared<std::promise<ClientResponse>>();
    auto f2 = second->get_future();
    client.send(get(server.url("/slow"), 30s), [](ClientResponse) {});
    REQUIRE(wait_until([&] { return server.slow_arrived() == 1; }, 5s));
    client.send(get(server.url("/slow"), 300ms), [second](ClientResponse r) { second->set_value(std::move(r)); });
    REQUIRE(f2.wait_for(5s) == std::future_status::ready);
    ClientResponse r = f2.get();
    CHECK(r.timed_out);
    CHECK(r.status == 0);
    CHECK(r.elapsed < 1500ms);
    CHECK(server.slow_arrived() == 1);
}

TEST_CASE("a refused connection, a bad scheme, a bad URL and a bad header give an error and status 0") {
    metrics::Registry registry;
    Client client({}, registry, "errors");

    RefusingPort refusing;
    ClientResponse r = call(client, get("http://127.0.0.1:" + std::to_string(refusing.port()) + "/x"));
    INFO("refused: " << r.error);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
    CHECK_FALSE(r.timed_out);
    CHECK(r.elapsed < 3s);

    r = call(client, get("ftp://127.0.0.1/file"));
    INFO("ftp: " << r.error);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());

    r = call(client, get("file:///etc/passwd"));
    INFO("file: " << r.error);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
    CHECK(r.body.empty());

    r = call(client, get("not a url"));
    INFO("malformed: " << r.error);
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());

    ClientRequest bad = get("http://127.0.0.1:" + std::to_string(refusing.port()) + "/x");
    bad.headers = {{"X-Injected", "a\r\nX-Evil: 1"}};
    r = call(client, bad);
    CHECK(r.status == 0);
    CHECK(r.error == "request header X-Injected has CR, LF or NUL in its value");
    CHECK(r.error.find("Evil") == std::string::npos);  // the value is never echoed

    bad.headers = {{"Bad Name", "v"}};
    CHECK(call(client, bad).error == "request header name is not a token");
    bad.headers = {};
    bad.timeout = 0ms;
    CHECK(call(client, bad).error == "request timeout must be > 0");

    CHECK(outcome_count(registry, "errors", "error") == 7);
}

TEST_CASE("a response body over max_response_body fails the request, with or without Content-Length") {
    TestServer server;
    metrics::Registry registry;
    ClientOptions options;
    options.max_response_body = 1024;
    Client client(options, registry, "limits");

    ClientResponse r = call(client, get(server.url("/big?n=1024")));
    CHECK(r.status == 200);
    CHECK(r.body.size() == 1024);

    r = call(client, get(server.url("/big?n=4096")));
    CHECK(r.status == 0);
    CHECK(r.error == "response body larger than max_response_body (1024 bytes)");
    CHECK(r.body.empty());

    r = call(client, get(server.url("/big-chunked?n=100000")));
    CHECK(r.status == 0);
    CHECK(r.error == "response body larger than max_response_body (1024 bytes)");

    r = call(client, get(server.url("/big-chunked?n=1000")));
    CHECK(r.status == 200);
    CHECK(r.body == std::string(1000, 'y'));

    CHECK(outcome_count(registry, "limits", "too_large") == 2);
    CHECK(outcome_count(registry, "limits", "2xx") == 2);
}

TEST_CASE("response headers over max_response_headers fail the request") {
    TestServer server;
    metrics::Registry registry;
    ClientOptions options;
    options.max_response_headers = 1024;
    Client client(options, registry, "headers");

    CHECK(call(client, get(server.url("/ok"))).status == 200);
    ClientResponse r = call(client, get(server.url("/fat-headers")));
    CHECK(r.status == 0);
    CHECK(r.error == "response headers larger than max_response_headers (1024 bytes)");
    CHECK(r.headers.empty());
    CHECK(outcome_count(registry, "headers", "too_large") == 1);
}

TEST_CASE("200 concurrent requests from several threads all complete exactly once over few connections") {
    TestServer server;
    metrics::Registry registry;
    ClientOptions options;
    options.max_connections_per_host = 8;
    constexpr int n = 200;
    std::vector<std::atomic<int>> calls(n);
    std::vector<std::atomic<int>> statuses(n);
    std::mutex ids_mu;
    std::set<std::thread::id> callback_threads;
    {
        Client client(options, registry, "burst");
        std::vector<std::thread> senders;
        for (int s = 0; s < 4; ++s)
            senders.emplace_back([&, s] {
                for (int i = s; i < n; i += 4)
                    client.send(get(server.url("/ok")), [&, i](ClientResponse r) {
                        calls[i].fetch_add(1);
                        statuses[i].store(r.status);
                        std::lock_guard lock(ids_mu);
                        callback_threads.insert(std::this_thread::get_id());
                    });
            });
        for (auto& t : senders) t.join();
        REQUIRE(wait_until([&] { return client.in_flight() == 0; }, 30s));
    }  // the Client is gone: any duplicate callback would have run by now
    for (int i = 0; i < n; ++i) {
        INFO("request " << i);
        CHECK(calls[i].load() == 1);
        CHECK(statuses[i].load() == 200);
    }
    CHECK(callback_threads.size() == 1);
    auto ports = server.remote_ports();
    INFO("connections used: " << ports.size());
    CHECK(ports.size() >= 1);
    CHECK(ports.size() <= 8);
    CHECK(outcome_count(registry, "burst", "2xx") == n);
    CHECK(metric(registry, "omnibus_http_client_request_duration_seconds_count{client=\"burst\"}") == n);
    CHECK(metric(registry, "omnibus_http_client_in_flight{client=\"burst\"}") == 0);
}

TEST_CASE("requests one after another reuse one kept-alive connection") {
    TestServer server;
    metrics::Registry registry;
    Client client({}, registry, "keepalive");
    for (int i = 0; i < 10; ++i) CHECK(call(client, get(server.url("/ok"))).status == 200);
    CHECK(server.remote_ports().size() == 1);
}

TEST_CASE("stop() with requests waiting on a slow server runs every callback once with client stopped") {
    TestServer server;
    metrics::Registry registry;
    ClientOptions options;
    options.max_connections_per_host = 4;  // 4 reach the server, 6 wait inside curl
    constexpr int n = 10;
    std::vector<std::atomic<int>> calls(n);  // before the Client: its callbacks write here
    std::vector<ClientResponse> responses(n);
    Client client(options, registry, "stopper");

    for (int i = 0; i < n; ++i)
        client.send(get(server.url("/slow"), 30s), [&, i](ClientResponse r) {
            responses[i] = std::move(r);
            calls[i].fetch_add(1);
        });
    REQUIRE(wait_until([&] { return server.slow_arrived() == 4; }, 5s));
    CHECK(client.in_flight() == n);

    auto t0 = std::chrono::steady_clock::now();
    client.stop();
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < 2s);
    CHECK(client.in_flight() == 0);
    for (int i = 0; i < n; ++i) {
        INFO("request " << i);
        CHECK(calls[i].load() == 1);
        CHECK(responses[i].status == 0);
        CHECK(responses[i].error == "client stopped");
        CHECK_FALSE(responses[i].timed_out);
    }

    // Later sends are answered inline, on the caller's thread, before send() returns.
    bool ran = false;
    std::thread::id where;
    std::string error;
    client.send(get(server.url("/ok")), [&](ClientResponse r) {
        ran = true;
        where = std::this_thread::get_id();
        error = r.error;
    });
    CHECK(ran);
    CHECK(where == std::this_thread::get_id());
    CHECK(error == "client stopped");
    client.stop();  // idempotent
    CHECK(outcome_count(registry, "stopper", "stopped") == n + 1);
    CHECK(server.remote_ports().empty());
}

TEST_CASE("a callback may send the next request, and one that throws does not stop the client") {
    TestServer server;
    metrics::Registry registry;
    std::vector<std::string> lines;
    std::mutex lines_mu;
    log::set_sink([&](std::string_view line) {
        std::lock_guard lock(lines_mu);
        lines.emplace_back(line);
    });
    struct SinkReset {
        ~SinkReset() { log::set_sink(nullptr); }
    } sink_reset;
    Client client({}, registry, "chain");

    client.send(get(server.url("/ok")), [](ClientResponse) { throw std::runtime_error("handler bug"); });
    auto done = std::make_shared<std::promise<int>>();
    auto future = done->get_future();
    client.send(get(server.url("/ok")), [&client, &server, done](ClientResponse first) {
        client.send(get(server.url("/limited")),
                    [done, s = first.status](ClientResponse second) { done->set_value(s * 1000 + second.status); });
    });
    REQUIRE(future.wait_for(10s) == std::future_status::ready);
    CHECK(future.get() == 200429);
    // The two first requests run side by side: the throwing one may finish last.
    CHECK(wait_until(
        [&] {
            std::lock_guard lock(lines_mu);
            for (const auto& l : lines)
                if (l.find("request callback threw") != std::string::npos) return true;
            return false;
        },
        5s));
}

TEST_CASE("stop() from inside a callback fails the rest once that callback returns") {
    TestServer server;
    metrics::Registry registry;
    std::atomic<int> stopped{0};
    Client client({}, registry, "selfstop");

    for (int i = 0; i < 3; ++i)
        client.send(get(server.url("/slow"), 30s), [&](ClientResponse r) {
            if (r.error == "client stopped") stopped.fetch_add(1);
        });
    REQUIRE(wait_until([&] { return server.slow_arrived() == 3; }, 5s));
    auto done = std::make_shared<std::promise<void>>();
    client.send(get(server.url("/ok")), [&client, done](ClientResponse) {
        client.stop();
        done->set_value();
    });
    REQUIRE(done->get_future().wait_for(5s) == std::future_status::ready);
    REQUIRE(wait_until([&] { return stopped.load() == 3; }, 5s));
    client.stop();  // joins the finished thread
    CHECK(client.in_flight() == 0);
}

TEST_CASE("bad client options are refused at construction") {
    metrics::Registry registry;
    ClientOptions o;
    CHECK_THROWS_AS(Client(o, registry, ""), std::invalid_argument);
    CHECK_THROWS_AS(Client(o, registry, "has space"), std::invalid_argument);
    o.max_response_body = 0;
    CHECK_THROWS_AS(Client(o, registry, "x"), std::invalid_argument);
    o = {};
    o.connect_timeout = 0ms;
    CHECK_THROWS_AS(Client(o, registry, "x"), std::invalid_argument);
    o = {};
    o.user_agent = "a\r\nb";
    CHECK_THROWS_AS(Client(o, registry, "x"), std::invalid_argument);
}
