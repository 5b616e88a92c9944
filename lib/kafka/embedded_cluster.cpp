// In-process mock Kafka cluster (see embedded_cluster.h).
#include "kafka/embedded_cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "log/log.h"

namespace omnibus::kafka {
namespace {

// A TCP connect to a listener makes the mock thread's poll() return, and it serves its
// command queue on every return. The mock accepts the connection and drops it on EOF.
void poke(uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    ::close(fd);
}

std::vector<uint16_t> ports_of(const std::string& bootstrap) {
    std::vector<uint16_t> ports;
    size_t start = 0;
    while (start < bootstrap.size()) {
        size_t end = bootstrap.find(',', start);
        if (end == std::string::npos) end = bootstrap.size();
        std::string hostport = bootstrap.substr(start, end - start);
        size_t colon = hostport.rfind(':');
        if (colon != std::string::npos) ports.push_back(static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))));
        start = end + 1;
    }
    return ports;
}

// Listener ports of the live embedded clusters' brokers; 0 marks a free slot.
constexpr size_t kMaxMockPorts = 64;
std::atomic<uint16_t> g_mock_ports[kMaxMockPorts];
std::atomic<int> g_mock_port_count{0};

void register_ports(const std::vector<uint16_t>& ports) {
    for (uint16_t port : ports)
        for (auto& slot : g_mock_ports) {
            uint16_t free = 0;
            if (slot.compare_exchange_strong(free, port)) {
                g_mock_port_count.fetch_add(1);
                break;
            }
        }
}

void unregister_ports(const std::vector<uint16_t>& ports) {
    for (uint16_t port : ports)
        for (auto& slot : g_mock_ports) {
            uint16_t mine = port;
            if (slot.compare_exchange_strong(mine, 0)) {
                g_mock_port_count.fetch_sub(1);
                break;
            }
        }
}

bool is_mock_listener(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0 || ss.ss_family != AF_INET) return false;
    const uint16_t port = ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    for (const auto& slot : g_mock_ports)
        if (slot.load(std::memory_order_relaxed) == port) return true;
    return false;
}

}  // namespace

EmbeddedCluster::EmbeddedCluster(int brokers) : brokers_(brokers) {
    if (brokers < 1) throw std::invalid_argument("embedded Kafka needs at least one broker");
    ctx_.role = "embedded";
    // The host handle never connects anywhere; "log_level=4" hides its notice that no
    // bootstrap.servers is configured.
    detail::ConfPtr conf = detail::make_conf({{"log_level", Secret("4")}, {"client.id", Secret("omnibus-embedded")}});
    host_ = detail::new_handle(RD_KAFKA_PRODUCER, std::move(conf), ctx_);
    mock_.reset(rd_kafka_mock_cluster_new(host_.get(), brokers));
    if (!mock_) throw std::runtime_error("cannot start the embedded Kafka cluster");
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(mock_.get());
    ports_ = ports_of(bootstrap_);
    register_ports(ports_);
    log::Logger("kafka").info("embedded Kafka cluster started (dev only: in memory, bounded log, no compaction)",
                              {{"bootstrap", bootstrap_}, {"brokers", brokers}});
}

EmbeddedCluster::~EmbeddedCluster() {
    with_wakeups([&] { mock_.reset(); });
    unregister_ports(ports_);
}

void EmbeddedCluster::with_wakeups(const std::function<void()>& fn) const {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::thread waker([&] {
        std::unique_lock lock(mu);
        // The first poke after a short grace: most commands are served at once.
        while (!cv.wait_for(lock, std::chrono::milliseconds(5), [&] { return done; })) {
            lock.unlock();
            for (uint16_t port : ports_) poke(port);
            lock.lock();
        }
    });
    try {
        fn();
    } catch (...) {
        {
            std::lock_guard lock(mu);
            done = true;
        }
        cv.notify_one();
        waker.join();
        throw;
    }
    {
        std::lock_guard lock(mu);
        done = true;
    }
    cv.notify_one();
    waker.join();
}

bool EmbeddedCluster::create_topic(const std::string& name, int partitions, int replication_factor) {
    int rf = std::clamp(replication_factor, 1, brokers_);
    rd_kafka_resp_err_t err =
        command([&](rd_kafka_mock_cluster_t* m) { return rd_kafka_mock_topic_create(m, name.c_str(), partitions, rf); });
    if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        throw std::runtime_error("embedded Kafka: cannot create topic " + name + ": " + rd_kafka_err2str(err));
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

}  // namespace omnibus::kafka

// TCP_NODELAY for the mock brokers' connections. librdkafka's mock accepts connections with
// Nagle's algorithm left on, where a real broker sets TCP_NODELAY. With Nagle on, a small
// response written while the previous one is unacknowledged waits for the client's delayed
// ACK, 40 ms on Linux, and acknowledgements (and the webhooks waiting for them) stall. The
// mock offers no hook for its sockets, so the process's accept() sets the option on sockets
// accepted on an embedded cluster's listener. librdkafka calls accept() through the PLT; the
// linker exports this definition because librdkafka references the symbol. Every other
// accept() in the process is passed through unchanged.
extern "C" int accept(int fd, sockaddr* __restrict addr, socklen_t* __restrict len) {
    int s = ::accept4(fd, addr, len, 0);
    using namespace omnibus::kafka;
    if (s >= 0 && g_mock_port_count.load(std::memory_order_relaxed) > 0 && is_mock_listener(fd)) {
        int on = 1;
        (void)::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    }
    return s;
}
