// omnibusd: command line, signal loop and exit codes.
//
// Threads: the main thread blocks SIGINT, SIGTERM and SIGHUP before any other
// thread exists (so every thread inherits the mask) and then waits for them
// with sigtimedwait; it also pings the systemd watchdog. All lifecycle calls
// on the Daemon happen here.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "config/reference.h"
#include "connectors/registry.h"
#include "daemon/daemon.h"
#include "daemon/daemon_config.h"
#include "daemon/systemd_notify.h"
#include "log/log.h"
#include "metrics/metrics.h"

// jemalloc reads this at its first allocation (MALLOC_CONF in the environment
// still overrides it). Its default of four arenas per core gives eight here,
// each keeping pages of its own; the daemon's hot threads have thread caches,
// so two arenas per core cost no measurable contention and keep the idle
// footprint inside its budget (docs/architecture.md: the allocator).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "narenas:4,lg_tcache_nslots_mul:-1";
}

namespace {

using namespace omnibus;
constexpr log::Logger lg{"main"};
constexpr const char* kDefaultConfig = "/etc/omnibus/omnibus.yaml";

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: omnibusd [--config FILE]      run the daemon (default %s)\n"
                 "       omnibusd --check-config FILE  validate FILE: every problem as FILE:LINE:COL: message\n"
                 "       omnibusd --print-config-reference   the configuration reference (markdown)\n"
                 "       omnibusd --version\n",
                 kDefaultConfig);
}

int check_config(const std::string& path, const connectors::Registry& registry) {
    auto result = daemon::load_daemon_config(path, registry);
    if (!result.ok()) {
        std::fputs(result.report().c_str(), stderr);
        std::fprintf(stderr, "%s: %zu problem%s\n", path.c_str(), result.diagnostics.size(),
                     result.diagnostics.size() == 1 ? "" : "s");
        return 1;
    }
    std::printf("%s\n", daemon::summarize(path, daemon::to_daemon_config(*result.config)).c_str());
    return 0;
}

int run(const std::string& path, const connectors::Registry& registry) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    signal(SIGPIPE, SIG_IGN);

    auto result = daemon::load_daemon_config(path, registry);
    if (!result.ok()) {
        // Never start half-configured: report everything and exit.
        std::fputs(result.report().c_str(), stderr);
        for (const auto& d : result.diagnostics) lg.error("invalid config", {{"problem", d.to_string()}});
        return 1;
    }

    daemon::Daemon d(path, daemon::to_daemon_config(*result.config), registry, metrics::default_registry());
    try {
        d.start();
    } catch (const std::exception& e) {
        lg.error("cannot start", {{"error", e.what()}});
        std::fprintf(stderr, "omnibusd: cannot start: %s\n", e.what());
        d.shutdown();
        return 1;
    }

    auto watchdog = daemon::systemd::watchdog_ping_interval();
    auto wait = watchdog ? std::min<std::chrono::microseconds>(*watchdog, std::chrono::seconds(1))
                         : std::chrono::microseconds(std::chrono::seconds(1));
    for (;;) {
        timespec ts{static_cast<time_t>(wait.count() / 1000000), static_cast<long>((wait.count() % 1000000) * 1000)};
        int sig = sigtimedwait(&signals, nullptr, &ts);
        if (watchdog) daemon::systemd::notify_watchdog();
        if (sig == SIGHUP) {
            lg.info("SIGHUP: reloading the config", {{"config", path}});
            d.reload();
        } else if (sig == SIGINT || sig == SIGTERM) {
            lg.info("signal received; draining", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
            break;
        }
    }
    d.shutdown();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config = kDefaultConfig;
    enum class Mode { run, check, reference, version } mode = Mode::run;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* flag) -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "omnibusd: %s needs a file\n", flag);
                usage(stderr);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--config" || a == "-c") config = value("--config");
        else if (a.rfind("--config=", 0) == 0) config = a.substr(9);
        else if (a == "--check-config") mode = Mode::check, config = value("--check-config");
        else if (a.rfind("--check-config=", 0) == 0) mode = Mode::check, config = a.substr(15);
        else if (a == "--print-config-reference") mode = Mode::reference;
        else if (a == "--version" || a == "-V") mode = Mode::version;
        else if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "omnibusd: unknown argument '%s'\n", a.c_str());
            usage(stderr);
            return 2;
        }
    }

    connectors::Registry registry;
    connectors::register_builtin_connectors(registry);

    switch (mode) {
        case Mode::version: std::printf("omnibusd %s\n", OMNIBUS_VERSION); return 0;
        case Mode::reference: {
            auto schema = daemon::daemon_schema(registry);
            std::fputs(config::render_reference(schema, "omnibusd configuration reference").c_str(), stdout);
            return 0;
        }
        case Mode::check: return check_config(config, registry);
        case Mode::run: return run(config, registry);
    }
    return 0;
}
