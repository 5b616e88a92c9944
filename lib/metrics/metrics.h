// The process's one metrics registry, rendered in the Prometheus text format.
//
// Thread-safety: creating or looking up a series takes a mutex; do it once at
// set-up and keep the returned reference. Updating a series (inc, set, observe)
// is lock-free and may happen on any thread. Series live as long as the
// Registry. Names follow omnibus_<component>_<what>_<unit>; counters end in
// _total; labels must be bounded (channel name yes, customer id never).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace omnibus::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
public:
    void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

class Gauge {
public:
    void set(double v) { v_.store(v, std::memory_order_relaxed); }
    void add(double d);
    double value() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> v_{0};
};

class Histogram {
public:
    explicit Histogram(std::vector<double> upper_bounds);
    void observe(double v);
    const std::vector<double>& bounds() const { return bounds_; }
    // Cumulative count per bound, then +Inf; sum; count.
    struct Snapshot {
        std::vector<uint64_t> cumulative;
        double sum = 0;
        uint64_t count = 0;
    };
    Snapshot snapshot() const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1 (last is +Inf)
    std::atomic<double> sum_{0};
    std::atomic<uint64_t> count_{0};
};

// Latency buckets in seconds, 100 µs .. 10 s.
std::vector<double> latency_buckets();

class Registry {
public:
    Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
    Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
    Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                         const Labels& labels = {});
    // A gauge whose value is read when rendered (queue depths and the like).
    // The function runs on the rendering thread and must be thread-safe.
    void gauge_fn(const std::string& name, const std::string& help, const Labels& labels,
                  std::function<double()> fn);

    std::string render() const;

private:
    enum class Type { counter, gauge, histogram };
    struct Series {
        Labels labels;
        std::unique_ptr<Counter> counter;
        std::unique_ptr<Gauge> gauge;
        std::unique_ptr<Histogram> histogram;
        std::function<double()> fn;
    };
    struct Family {
        Type type;
        std::string help;
        std::vector<std::unique_ptr<Series>> series;
    };
    Series& series(const std::string& name, const std::string& help, Type type, const Labels& labels);

    mutable std::mutex mu_;
    std::map<std::string, Family> families_;  // ordered: stable output
};

// The daemon's registry. Components take a Registry& where they can; this is
// the instance main() passes around.
Registry& default_registry();

}  // namespace omnibus::metrics
