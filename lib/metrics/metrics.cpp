// Prometheus metrics registry (see metrics.h).
#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace omnibus::metrics {
namespace {

void atomic_add(std::atomic<double>& a, double d) {
    double cur = a.load(std::memory_order_relaxed);
    while (!a.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
}

std::string format_double(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Shortest form that reads back as the same double (0.1, not 0.10000000000000001).
    char buf[40];
    for (int prec = 15; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    return buf;
}

void append_label_value(std::string& out, const std::string& v) {
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

void append_labels(std::string& out, const Labels& labels, const char* extra_key = nullptr,
                   const std::string& extra_value = {}) {
    if (labels.empty() && !extra_key) return;
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
        if (!first) out += ',';
        first = false;
        out += k;
        out += "=\"";
        append_label_value(out, v);
        out += '"';
    }
    if (extra_key) {
        if (!first) out += ',';
        out += extra_key;
        out += "=\"";
        out += extra_value;
        out += '"';
    }
    out += '}';
}

bool valid_name(const std::string& name) {
    if (name.empty()) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

}  // namespace

void Gauge::add(double d) { atomic_add(v_, d); }

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
    std::sort(bounds_.begin(), bounds_.end());
    buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
    for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
    size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    atomic_add(sum_, v);
    count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.cumulative.resize(bounds_.size() + 1);
    uint64_t acc = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
        acc += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative[i] = acc;
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    s.count = acc;
    return s;
}

std::vector<double> latency_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Registry::Series& Registry::series(const std::string& name, const std::string& help, Type type,
                                   const Labels& labels) {
    if (!valid_name(name)) throw std::invalid_argument("invalid metric name: " + name);
    auto it = families_.find(name);
    if (it == families_.end()) {
        it = families_.emplace(name, Family{type, help, {}}).first;
    } else if (it->second.type != type) {
        throw std::invalid_argument("metric " + name + " registered with two types");
    }
    for (auto& s : it->second.series) {
        if (s->labels == labels) return *s;
    }
    auto s = std::make_unique<Series>();
    s->labels = labels;
    it->second.series.push_back(std::move(s));
    return *it->second.series.back();
}

Counter& Registry::counter(const std::string& name, const std::string& help, const Labels& labels) {
    std::lock_guard lock(mu_);
    Series& s = series(name, help, Type::counter, labels);
    if (!s.counter) s.counter = std::make_unique<Counter>();
    return *s.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, const Labels& labels) {
    std::lock_guard lock(mu_);
    Series& s = series(name, help, Type::gauge, labels);
    if (!s.gauge && !s.fn) s.gauge = std::make_unique<Gauge>();
    if (!s.gauge) throw std::invalid_argument("metric " + name + " is a function gauge");
    return *s.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, const std::vector<double>& bounds,
                               const Labels& labels) {
    std::lock_guard lock(mu_);
    Series& s = series(name, help, Type::histogram, labels);
    if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds);
    return *s.histogram;
}

void Registry::gauge_fn(const std::string& name, const std::string& help, const Labels& labels,
                        std::function<double()> fn) {
    std::lock_guard lock(mu_);
    Series& s = series(name, help, Type::gauge, labels);
    s.gauge.reset();
    s.fn = std::move(fn);
}

std::string Registry::render() const {
    std::lock_guard lock(mu_);
    std::string out;
    out.reserve(4096);
    for (const auto& [name, fam] : families_) {
        out += "# HELP " + name + " ";
        for (char c : fam.help) {
            if (c == '\\') out += "\\\\";
            else if (c == '\n') out += "\\n";
            else out += c;
        }
        out += "\n# TYPE " + name + " ";
        out += fam.type == Type::counter ? "counter" : fam.type == Type::gauge ? "gauge" : "histogram";
        out += '\n';
        for (const auto& s : fam.series) {
            if (fam.type == Type::histogram) {
                auto snap = s->histogram->snapshot();
                const auto& b = s->histogram->bounds();
                for (size_t i = 0; i <= b.size(); ++i) {
                    out += name + "_bucket";
                    append_labels(out, s->labels, "le", i < b.size() ? format_double(b[i]) : "+Inf");
                    out += ' ' + std::to_string(snap.cumulative[i]) + '\n';
                }
                out += name + "_sum";
                append_labels(out, s->labels);
                out += ' ' + format_double(snap.sum) + '\n';
                out += name + "_count";
                append_labels(out, s->labels);
                out += ' ' + std::to_string(snap.count) + '\n';
            } else {
                out += name;
                append_labels(out, s->labels);
                out += ' ';
                if (s->counter) out += std::to_string(s->counter->value());
                else if (s->gauge) out += format_double(s->gauge->value());
                else if (s->fn) out += format_double(s->fn());
                else out += '0';
                out += '\n';
            }
        }
    }
    return out;
}

Registry& default_registry() {
    static Registry r;
    return r;
}

}  // namespace omnibus::metrics
