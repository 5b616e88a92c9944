// omnibusd: command line, signal loop and exit codes.
//
// Threads: the main thread blocks SIGINT, SIGTERM and SIGHUP before any other
// thread exists (so every thread inherits the mask) and then waits for them
// with sigtimedwait; it also pings the systemd watchdog. All lifecycle calls
// on the Daemon happen here.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "config/reference.h"
#include "config/text_file.h"
#include "connectors/registry.h"
#include "daemon/daemon.h"
#include "daemon/daemon_config.h"
#include "daemon/systemd_notify.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pipeline/classify/classifier.h"
#include "pipeline/route/explain_input.h"
#include "pipeline/route/router.h"

namespace {

using namespace omnibus;
constexpr log::Logger lg{"main"};
constexpr const char* kDefaultConfig = "/etc/omnibus/omnibus.yaml";

void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: omnibusd [--config FILE]      run the daemon (default %s)\n"
                 "       omnibusd --check-config FILE  validate FILE: every problem as FILE:LINE:COL: message\n"
                 "       omnibusd --explain-route FILE.json [--config FILE] [--json]\n"
                 "                                     which routing rule a message would hit, and why\n"
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

// --explain-route: which rule a message would hit and why, with the rules of `config` (or the
// built-in ones without a config). Exit 0 with the explanation, 1 when a file is bad.
int explain_route(const std::string& file, const std::optional<std::string>& config,
                  const connectors::Registry& registry, bool as_json) {
    std::shared_ptr<const pipeline::route::Router> router = pipeline::route::Router::builtin();
    if (config) {
        auto result = daemon::load_daemon_config(*config, registry);
        if (!result.ok()) {
            std::fputs(result.report().c_str(), stderr);
            return 1;
        }
        const auto settings = daemon::to_daemon_config(*result.config);
        if (!settings.pipeline.routing_rules_file.empty()) {
            auto rules = pipeline::route::Router::load_file(
                daemon::resolve_beside(*config, settings.pipeline.routing_rules_file));
            if (!rules.ok()) {
                std::fputs(rules.report().c_str(), stderr);
                return 1;
            }
            router = rules.router;
        }
    }
    const auto content = config::read_text_file(file, 1 << 20);
    if (!content.text) {
        std::fprintf(stderr, "%s: cannot read: %s\n", file.c_str(), std::strerror(content.error));
        return 1;
    }
    const std::string& text = *content.text;
    auto input = pipeline::route::parse_explain_input(text, std::chrono::system_clock::now());
    if (!input.ok()) {
        std::fprintf(stderr, "%s: %s\n", file.c_str(), input.error().to_string().c_str());
        return 1;
    }
    if (!input->envelope.intent && input->envelope.direction == envelope::Direction::inbound) {
        // Unclassified, as a connector writes it: classify it as the pipeline would.
        std::shared_ptr<const pipeline::classify::Classifier> classifier = pipeline::classify::Classifier::builtin();
        if (config) {
            const auto settings = daemon::to_daemon_config(*daemon::load_daemon_config(*config, registry).config);
            if (!settings.pipeline.classify_rules_file.empty()) {
                auto rules = pipeline::classify::Classifier::load_file(
                    daemon::resolve_beside(*config, settings.pipeline.classify_rules_file));
                if (!rules.ok()) {
                    std::fputs(rules.report().c_str(), stderr);
                    return 1;
                }
                classifier = rules.classifier;
            }
        }
        classifier->apply(input->envelope, "");
        const auto& env = input->envelope;
        std::printf("classified: language=%s intent=%s (%s) sentiment=%s %.2f\n", env.language.value_or("?").c_str(),
                    env.intent->name.c_str(), env.intent->rule.value_or("").c_str(),
                    std::string(envelope::to_string(env.sentiment->label)).c_str(), env.sentiment->score);
    }
    const auto explanation = router->explain(input->envelope, input->context);
    const std::string out = as_json ? pipeline::route::to_json(explanation) + "\n" : pipeline::route::to_text(explanation);
    std::fputs(out.c_str(), stdout);
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
    bool config_given = false;
    bool as_json = false;
    std::string explain_file;
    enum class Mode { run, check, reference, version, explain } mode = Mode::run;
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
        if (a == "--config" || a == "-c") config = value("--config"), config_given = true;
        else if (a.rfind("--config=", 0) == 0) config = a.substr(9), config_given = true;
        else if (a == "--explain-route") mode = Mode::explain, explain_file = value("--explain-route");
        else if (a.rfind("--explain-route=", 0) == 0) mode = Mode::explain, explain_file = a.substr(16);
        else if (a == "--json") as_json = true;
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
        case Mode::explain:
            return explain_route(explain_file, config_given ? std::optional<std::string>(config) : std::nullopt,
                                 registry, as_json);
        case Mode::run: return run(config, registry);
    }
    return 0;
}
