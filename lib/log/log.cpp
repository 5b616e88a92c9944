// Structured JSON-lines logger (see log.h).
#include "log/log.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace omnibus::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::mutex g_sink_mutex;
Sink g_sink;  // guarded by g_sink_mutex
std::atomic<bool> g_has_sink{false};

void write_stdout(std::string_view line) {
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDOUT_FILENO, p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // nowhere left to report a failing stdout
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
}

void append_timestamp(std::string& out) {
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    out += buf;
}

}  // namespace

void json_escape(std::string_view text, std::string& out) {
    static const char* hex = "0123456789abcdef";
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 0xf];
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
}

void Field::append_json(std::string& out) const {
    out += '"';
    json_escape(key_, out);
    out += "\":";
    switch (kind_) {
        case Kind::str:
            out += '"';
            json_escape(str_, out);
            out += '"';
            break;
        case Kind::integer: out += std::to_string(int_); break;
        case Kind::boolean: out += int_ ? "true" : "false"; break;
        case Kind::real: {
            if (!std::isfinite(real_)) {
                out += "null";
            } else {
                // Shortest form that reads back as the same double: 0.047, not 0.046999999999999997.
                char buf[32];
                for (int prec = 15; prec <= 17; ++prec) {
                    std::snprintf(buf, sizeof buf, "%.*g", prec, real_);
                    if (std::strtod(buf, nullptr) == real_) break;
                }
                out += buf;
            }
            break;
        }
    }
}

void set_level(Level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
Level level() { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool parse_level(std::string_view text, Level& out) {
    if (text == "debug") out = Level::debug;
    else if (text == "info") out = Level::info;
    else if (text == "warn" || text == "warning") out = Level::warn;
    else if (text == "error") out = Level::error;
    else return false;
    return true;
}

std::string_view level_name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::warn: return "warn";
        case Level::error: return "error";
    }
    return "info";
}

void set_sink(Sink sink) {
    std::lock_guard lock(g_sink_mutex);
    g_sink = std::move(sink);
    g_has_sink.store(static_cast<bool>(g_sink), std::memory_order_release);
}

void write(Level l, std::string_view component, std::string_view msg, Fields fields) {
    if (static_cast<int>(l) < g_level.load(std::memory_order_relaxed)) return;
    std::string line;
    line.reserve(128 + msg.size());
    line += "{\"ts\":\"";
    append_timestamp(line);
    line += "\",\"level\":\"";
    line += level_name(l);
    line += "\",\"component\":\"";
    json_escape(component, line);
    line += "\",\"msg\":\"";
    json_escape(msg, line);
    line += '"';
    for (const Field& f : fields) {
        line += ',';
        f.append_json(line);
    }
    line += "}\n";
    if (g_has_sink.load(std::memory_order_acquire)) {
        std::lock_guard lock(g_sink_mutex);
        if (g_sink) {
            g_sink(line);
            return;
        }
    }
    write_stdout(line);
}

}  // namespace omnibus::log
