// Starts omnibusd on a config written by the test, finds the admin port it
// bound (from its "started" log line) and talks to it over loopback.
#pragma once

#include <httplib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "support/process.h"
#include "support/scratch_dir.h"
#include "support/wait.h"

namespace omnibus::test {

inline std::string omnibusd_path() { return std::string(OMNIBUS_BINARY_DIR) + "/daemon/omnibusd"; }

// A config file in /tmp, removed with the object.
class TempFile {
public:
    explicit TempFile(const std::string& content, const std::string& suffix = ".yaml") {
        char tmpl[] = "/tmp/omnibus-cfg-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ::close(fd);
        ::unlink(tmpl);
        path_ = std::string(tmpl) + suffix;
        write(content);
    }
    ~TempFile() { ::unlink(path_.c_str()); }
    void write(const std::string& content) const { std::ofstream(path_, std::ios::trunc) << content; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

// Every daemon a test starts binds loopback only, on ports the kernel picks.
// kStateDirPlaceholder in a config becomes the daemon's own fresh state directory: the state
// stores (identity, dedup) lock theirs, and tests run in parallel.
inline const char* kStateDirPlaceholder = "/tmp/omnibus-test-state";
inline const char* kEmbeddedConfig = R"(
state_dir: /tmp/omnibus-test-state
log:
  level: info
admin:
  listen: 127.0.0.1:0
edge:
  listen: 127.0.0.1:0
kafka:
  embedded: true
  partitions: 2
channels: []
)";

class Daemon {
public:
    explicit Daemon(const std::string& config, std::vector<std::string> env = {})
        : state_("omnibus-test-state"),
          file_(with_state_dir(config)),
          proc_({omnibusd_path(), "--config", file_.path()}, std::move(env)) {}

    Process& process() { return proc_; }
    const TempFile& file() const { return file_; }
    const std::string& state_dir() const { return state_.path(); }
    // Rewrites the config file (for a reload), with the same state directory.
    void write_config(const std::string& config) const { file_.write(with_state_dir(config)); }
    std::string output() const { return proc_.output(); }

    // The admin port from the "started" line; 0 if the daemon has not started within the timeout.
    int admin_port(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        if (port_) return port_;
        static const std::regex re(R"re("msg":"started".*"admin":"127\.0\.0\.1:(\d+)")re");
        wait_until(
            [&] {
                std::smatch m;
                std::string out = proc_.output();
                if (std::regex_search(out, m, re)) port_ = std::stoi(m[1]);
                return port_ != 0 || !proc_.running();
            },
            timeout);
        return port_;
    }

    // The edge port from the "started" line (after admin_port() found that line).
    int edge_port() {
        static const std::regex re(R"re("msg":"started".*"edge":"127\.0\.0\.1:(\d+)")re");
        std::smatch m;
        std::string out = proc_.output();
        return std::regex_search(out, m, re) ? std::stoi(m[1]) : 0;
    }

    httplib::Result get(const std::string& path, const httplib::Headers& headers = {}) {
        httplib::Client c("127.0.0.1", admin_port());
        c.set_connection_timeout(std::chrono::seconds(2));
        c.set_read_timeout(std::chrono::seconds(5));
        return c.Get(path.c_str(), headers);
    }

    bool wait_ready(std::chrono::milliseconds timeout) {
        return wait_until(
            [&] {
                auto r = get("/readyz");
                return r && r->status == 200;
            },
            timeout, std::chrono::milliseconds(10));
    }

    bool wait_log(const std::string& needle, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return wait_until([&] { return proc_.output().find(needle) != std::string::npos; }, timeout);
    }

private:
    std::string with_state_dir(std::string config) const {
        const std::string placeholder = kStateDirPlaceholder;
        for (auto at = config.find(placeholder); at != std::string::npos;
             at = config.find(placeholder, at + state_.path().size()))
            config.replace(at, placeholder.size(), state_.path());
        return config;
    }

    ScratchDir state_;
    TempFile file_;
    Process proc_;
    int port_ = 0;
};

}  // namespace omnibus::test
