// AdminForwarder: a holder that does not answer costs one timeout, then requests for it fail
// at once until the back-off ends; other holders are not affected.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "daemon/admin_forwarder.h"
#include "metrics/metrics.h"

using namespace omnibus;
using Clock = std::chrono::steady_clock;

namespace {

// A port that takes connections (the kernel completes them) and never answers a byte.
struct SilentPort {
    int fd = -1;
    int port = 0;
    SilentPort() {
        fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port = ntohs(a.sin_port);
    }
    ~SilentPort() { ::close(fd); }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

}  // namespace

TEST_CASE("admin forwarder: a holder that did not answer is not asked again until the back-off ends",
          "[daemon][forward]") {
    metrics::Registry reg;
    daemon::AdminForwarderOptions o;
    o.timeout = std::chrono::milliseconds(300);
    o.unreachable_backoff = std::chrono::milliseconds(1500);
    daemon::AdminForwarder f(o, reg);
    SilentPort silent;
    const daemon::ForwardRequest req{silent.url(), "/v1/customers/c1/messages", ""};

    auto t0 = Clock::now();
    auto first = f.get(req);
    const double first_ms = ms_since(t0);
    CHECK(first.status == 0);
    CHECK_FALSE(first.error.empty());
    CHECK(first_ms >= 250);  // it waited for the timeout

    t0 = Clock::now();
    auto second = f.get(req);
    CHECK(second.status == 0);
    CHECK(second.error == "did not answer a moment ago");
    CHECK(ms_since(t0) < 100);  // no admin thread held for the timeout again

    // Another holder is asked as usual; a closed port answers "refused" at once, and is asked
    // again next time (a refusal costs nothing to wait for).
    SilentPort other;
    const std::string closed = other.url();
    ::close(other.fd);
    other.fd = ::socket(AF_INET, SOCK_STREAM, 0);  // the destructor closes something valid
    for (int i = 0; i < 2; ++i) {
        auto refused = f.get({closed, "/v1/customers/c2/messages", ""});
        CHECK(refused.status == 0);
        CHECK(refused.error != "did not answer a moment ago");
    }

    // After the back-off the silent holder is asked again (and times out again).
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    t0 = Clock::now();
    auto third = f.get(req);
    CHECK(third.status == 0);
    CHECK(third.error != "did not answer a moment ago");
    CHECK(ms_since(t0) >= 250);
}
