// systemd service notifications (Type=notify): READY, STOPPING, RELOADING,
// STATUS and the watchdog. Each call is a no-op when not run by systemd.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace omnibus::daemon::systemd {

void notify_ready(std::string_view status);
void notify_reloading();
void notify_reloaded(std::string_view status);
void notify_stopping();
void notify_status(std::string_view status);
void notify_watchdog();

// The interval at which the watchdog must be pinged (half of WatchdogSec), if enabled.
std::optional<std::chrono::microseconds> watchdog_ping_interval();

}  // namespace omnibus::daemon::systemd
