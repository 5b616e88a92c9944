// systemd notifications through libsystemd's sd_notify (see systemd_notify.h).
#include "daemon/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace omnibus::daemon::systemd {
namespace {

void send(const std::string& state) { sd_notify(0, state.c_str()); }

uint64_t monotonic_usec() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }
// Type=notify-reload (systemd ≥ 253) wants MONOTONIC_USEC with RELOADING=1; older systemd ignores it.
void notify_reloading() { send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec())); }
void notify_reloaded(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }
void notify_stopping() { send("STOPPING=1"); }
void notify_status(std::string_view status) { send("STATUS=" + std::string(status)); }
void notify_watchdog() { send("WATCHDOG=1"); }

std::optional<std::chrono::microseconds> watchdog_ping_interval() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return std::chrono::microseconds(usec / 2);
    return std::nullopt;
}

}  // namespace omnibus::daemon::systemd
