// Structured JSON-lines logger: one line per event, to stdout (journald picks it up).
//
// Thread-safety: every function here may be called from any thread. A line is
// formatted into a local buffer and written with a single write(2), so lines
// from different threads never interleave.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>

namespace omnibus {
class Secret;
}

namespace omnibus::log {

enum class Level : int { debug = 0, info = 1, warn = 2, error = 3 };

// One key/value pair of a log line. Values are copied into the line at once,
// so temporaries are fine. A Secret always prints as "***".
class Field {
public:
    Field(std::string_view key, std::string_view v) : key_(key), kind_(Kind::str), str_(v) {}
    Field(std::string_view key, const char* v) : key_(key), kind_(Kind::str), str_(v ? v : "") {}
    Field(std::string_view key, const std::string& v) : key_(key), kind_(Kind::str), str_(v) {}
    Field(std::string_view key, bool v) : key_(key), kind_(Kind::boolean), int_(v ? 1 : 0) {}
    Field(std::string_view key, int v) : key_(key), kind_(Kind::integer), int_(v) {}
    Field(std::string_view key, long v) : key_(key), kind_(Kind::integer), int_(v) {}
    Field(std::string_view key, long long v) : key_(key), kind_(Kind::integer), int_(v) {}
    Field(std::string_view key, unsigned v) : key_(key), kind_(Kind::integer), int_(static_cast<int64_t>(v)) {}
    Field(std::string_view key, unsigned long v) : key_(key), kind_(Kind::integer), int_(static_cast<int64_t>(v)) {}
    Field(std::string_view key, unsigned long long v)
        : key_(key), kind_(Kind::integer), int_(static_cast<int64_t>(v)) {}
    Field(std::string_view key, double v) : key_(key), kind_(Kind::real), real_(v) {}
    Field(std::string_view key, const Secret&) : key_(key), kind_(Kind::str), str_("***") {}

    void append_json(std::string& out) const;

private:
    enum class Kind { str, integer, real, boolean };
    std::string_view key_;
    Kind kind_;
    std::string_view str_;
    int64_t int_ = 0;
    double real_ = 0;
};

using Fields = std::initializer_list<Field>;

void set_level(Level level);
Level level();
bool parse_level(std::string_view text, Level& out);
std::string_view level_name(Level level);

// Replaces where lines go (tests capture them). nullptr restores stdout.
using Sink = std::function<void(std::string_view line)>;
void set_sink(Sink sink);

void write(Level level, std::string_view component, std::string_view msg, Fields fields = {});

// Appends `text` to `out` as the inside of a JSON string (no quotes).
void json_escape(std::string_view text, std::string& out);

// A component-named handle: log::Logger log{"kafka"}; log.info("ready", {{"brokers", b}});
class Logger {
public:
    explicit constexpr Logger(std::string_view component) : component_(component) {}
    void debug(std::string_view msg, Fields f = {}) const { emit(Level::debug, msg, f); }
    void info(std::string_view msg, Fields f = {}) const { emit(Level::info, msg, f); }
    void warn(std::string_view msg, Fields f = {}) const { emit(Level::warn, msg, f); }
    void error(std::string_view msg, Fields f = {}) const { emit(Level::error, msg, f); }
    bool enabled(Level l) const { return static_cast<int>(l) >= static_cast<int>(level()); }

private:
    void emit(Level l, std::string_view msg, Fields f) const {
        if (enabled(l)) write(l, component_, msg, f);
    }
    std::string_view component_;
};

// At most one log line per interval for an event that can repeat per request, per connection
// or per record (rejections, timeouts, records Kafka did not take during an outage), with the
// number of occurrences it stood for: a storm of identical lines would cost the threads that
// write them (a blocking write to stdout once journald's pipe is full) and bury the rest.
// Thread-safe; lock-free.
class Throttle {
public:
    explicit Throttle(std::chrono::steady_clock::duration interval = std::chrono::seconds(10))
        : interval_(interval.count()) {}
    // True when a line may be written now; `count` is then how many events it covers.
    bool allow(std::uint64_t& count) {
        const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
        std::int64_t next = next_.load(std::memory_order_relaxed);
        if (now >= next && next_.compare_exchange_strong(next, now + interval_, std::memory_order_relaxed)) {
            count = pending_.exchange(0, std::memory_order_relaxed) + 1;
            return true;
        }
        pending_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }

private:
    const std::int64_t interval_;
    std::atomic<std::int64_t> next_{0};
    std::atomic<std::uint64_t> pending_{0};
};

}  // namespace omnibus::log
