// The edge under load: serves POST /webhooks/bench on 127.0.0.1 with a handler
// that answers 200 at once (--mode sync) or hands the Responder to another
// thread that answers it, as a Kafka delivery callback will (--mode async).
// bench/edge/run drives it with wrk. Runs until SIGINT or SIGTERM, then prints
// what it served.
//
//   bench_edge [--mode sync|async] [--port N] [--threads N]
//   bench_edge --free-port     prints a free loopback port and exits
#include <signal.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "edge/edge_server.h"
#include "log/log.h"
#include "metrics/metrics.h"

using namespace omnibus;

namespace {

// Stands for the Kafka poll thread: answers Responders in batches, off the edge's threads.
class DeliveryThread {
public:
    DeliveryThread() : thread_([this] { loop(); }) {}
    ~DeliveryThread() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    void push(edge::Responder r) {
        {
            std::lock_guard lock(mu_);
            queue_.push_back(std::move(r));
        }
        cv_.notify_one();
    }

private:
    void loop() {
        std::deque<edge::Responder> batch;
        for (;;) {
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
                if (done_ && queue_.empty()) return;
                batch.swap(queue_);
            }
            for (auto& r : batch) r.respond(200, "{\"ok\":true}");
            batch.clear();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<edge::Responder> queue_;
    bool done_ = false;
    std::thread thread_;
};

int usage() {
    std::fprintf(stderr, "usage: bench_edge [--mode sync|async] [--port N] [--threads N] | --free-port\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = "sync";
    edge::EdgeSettings s;
    s.host = "127.0.0.1";
    s.port = 0;
    s.threads = 2;
    s.max_connections_per_ip = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--free-port") {
            metrics::Registry registry;
            edge::EdgeServer probe(s, registry);
            log::set_level(log::Level::warn);
            probe.start();
            std::printf("%u\n", probe.port());
            return 0;
        }
        if (i + 1 >= argc) return usage();
        if (a == "--mode")
            mode = argv[++i];
        else if (a == "--port")
            s.port = static_cast<uint16_t>(std::atoi(argv[++i]));
        else if (a == "--threads")
            s.threads = static_cast<unsigned>(std::atoi(argv[++i]));
        else
            return usage();
    }
    if (mode != "sync" && mode != "async") return usage();
    log::set_level(log::Level::warn);

    // Signals are taken by sigwait below, not by whichever thread they hit.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    metrics::Registry registry;
    auto delivery = std::make_unique<DeliveryThread>();
    {
        edge::EdgeServer server(s, registry);
        edge::Handler handler;
        if (mode == "sync") {
            handler = [](edge::Request, edge::Responder r) { r.respond(200, "{\"ok\":true}"); };
        } else {
            handler = [d = delivery.get()](edge::Request, edge::Responder r) { d->push(std::move(r)); };
        }
        server.add_channel({"bench", {"POST"}, std::move(handler)});
        server.start();
        std::printf("bench_edge listening on 127.0.0.1:%u mode=%s threads=%u\n", server.port(), mode.c_str(),
                    s.threads);
        std::fflush(stdout);

        int sig = 0;
        sigwait(&stop_signals, &sig);
        server.stop();
    }
    delivery.reset();
    const std::string text = registry.render();
    size_t pos = 0;
    while ((pos = text.find("omnibus_edge_requests_total{", pos)) != std::string::npos) {
        size_t eol = text.find('\n', pos);
        std::printf("%s\n", text.substr(pos, eol - pos).c_str());
        pos = eol;
    }
    return 0;
}
