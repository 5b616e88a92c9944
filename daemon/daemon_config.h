// The daemon's configuration schema (log, admin, kafka, shutdown, pipeline, channels) and
// its translation into the settings each component takes. The options are
// declared once here; validation, defaults and docs/configuration.md follow.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/section.h"
#include "config/spec.h"
#include "daemon/admin_server.h"
#include "edge/edge_server.h"
#include "kafka/settings.h"
#include "log/log.h"
#include "pipeline/pipeline_settings.h"

namespace omnibus::connectors {
class Registry;
}

namespace omnibus::daemon {

struct DaemonConfig {
    config::Section root;
    log::Level log_level = log::Level::info;
    AdminSettings admin;
    std::string admin_advertise;  // admin.advertise; "" = derived from the bound address at start
    edge::EdgeSettings edge;
    kafka::KafkaSettings kafka;
    std::string state_dir;
    std::chrono::milliseconds shutdown_timeout{4000};
    std::vector<config::Section> channels;
    pipeline::PipelineSettings pipeline;
};

// The whole schema. `registry` provides the channel types and must outlive
// every load made with the returned spec.
config::Spec daemon_schema(const connectors::Registry& registry);

// Reads a validated config into component settings.
DaemonConfig to_daemon_config(const config::Section& root);

// Reads a validated `pipeline:` section.
pipeline::PipelineSettings pipeline_settings(const config::Section& pipeline);

// Loads and validates `path`: every problem at once, as FILE:LINE:COL: message.
config::LoadResult load_daemon_config(const std::string& path, const connectors::Registry& registry,
                                      const config::LoadOptions& options = {});

// `file` as named in the config at `config_path`: absolute as it is, relative to the
// config file's directory otherwise.
std::string resolve_beside(const std::string& config_path, const std::string& file);

// One line describing a valid config, e.g.
// "config/quickstart.yaml: ok: kafka embedded, admin 127.0.0.1:9090, 0 channels".
std::string summarize(const std::string& path, const DaemonConfig& cfg);

// Options that SIGHUP applies without a restart; every other change needs one.
bool reloadable(const std::string& option_path);

}  // namespace omnibus::daemon
