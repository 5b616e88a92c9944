// RAII owners of librdkafka handles and the log/error callbacks every client installs.
#include "kafka/client_handle.h"

#include <array>

#include "log/log.h"

namespace omnibus::kafka::detail {
namespace {

constexpr log::Logger logger{"kafka"};

bool looks_secret(std::string_view name) {
    static constexpr std::array<std::string_view, 7> marks = {"password", "secret", "key",       "token",
                                                              "jaas",     "oauthbearer.config", "credential"};
    for (auto m : marks)
        if (name.find(m) != std::string_view::npos) return true;
    return false;
}

// syslog levels (0 emerg .. 7 debug) → ours.
log::Level map_level(int level) {
    if (level <= 3) return log::Level::error;
    if (level == 4) return log::Level::warn;
    if (level <= 6) return log::Level::info;
    return log::Level::debug;
}

// jemalloc's mallctl when the process links jemalloc (omnibusd does), else null.
extern "C" int mallctl(const char*, void*, size_t*, void*, size_t) __attribute__((weak));

// librdkafka's own threads (a main thread and one per broker, per client: two
// dozen in a daemon with the pipeline on) do little allocating of their own, but
// each one's jemalloc thread cache keeps ~70 KB of freed objects for good: 3 MB of
// an idle daemon's 30 MB budget. Without a cache they allocate from the arenas
// directly, which costs a lock per allocation on threads that allocate per batch.
rd_kafka_resp_err_t on_thread_start(rd_kafka_t*, rd_kafka_thread_type_t, const char*, void*) {
    if (mallctl) {
        bool off = false;
        (void)mallctl("thread.tcache.enabled", nullptr, nullptr, &off, sizeof off);
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

rd_kafka_resp_err_t on_new(rd_kafka_t* rk, const rd_kafka_conf_t*, void*, char*, size_t) {
    return rd_kafka_interceptor_add_on_thread_start(rk, "omnibus-thread-cache", on_thread_start, nullptr);
}

void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
    log::Level l = map_level(level);
    if (static_cast<int>(l) < static_cast<int>(log::level())) return;
    const auto* ctx = static_cast<const ClientContext*>(rd_kafka_opaque(rk));
    std::string text = ctx ? redact(buf, ctx->secrets) : std::string(buf);
    log::write(l, "kafka", text,
               {{"client", rd_kafka_name(rk)}, {"role", ctx ? std::string_view(ctx->role) : "?"}, {"fac", fac}});
}

void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* ctx = static_cast<ClientContext*>(opaque);
    auto code = static_cast<rd_kafka_resp_err_t>(err);
    std::string why = redact(reason ? reason : "", ctx->secrets);
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512] = {0};
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        ctx->fatal.store(true);
        logger.error("fatal client error",
                     {{"client", rd_kafka_name(rk)}, {"error", rd_kafka_err2name(orig)}, {"reason", redact(fatal, ctx->secrets)}});
        return;
    }
    if (code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        ctx->all_brokers_down.store(true);
        logger.warn("all brokers down", {{"client", rd_kafka_name(rk)}, {"reason", why}});
        return;
    }
    // Transport, resolve and authentication failures also come as librdkafka log lines
    // (log_cb, levels 3-4); keep this copy for debugging only.
    logger.debug("client error", {{"client", rd_kafka_name(rk)}, {"error", rd_kafka_err2name(code)}, {"reason", why}});
}

}  // namespace

std::vector<std::string> secret_values(const Properties& props) {
    std::vector<std::string> out;
    for (const auto& [name, value] : props)
        if (looks_secret(name) && !value.empty()) out.push_back(value.reveal());
    return out;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
    for (const auto& s : secrets) {
        if (s.empty()) continue;
        for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 3)) text.replace(pos, s.size(), "***");
    }
    return text;
}

ConfPtr make_conf(const Properties& props) {
    ConfPtr conf(rd_kafka_conf_new());
    for (const auto& [name, value] : props) {
        char errstr[512] = {0};
        rd_kafka_conf_res_t res = rd_kafka_conf_set(conf.get(), name.c_str(), value.reveal().c_str(), errstr, sizeof errstr);
        if (res == RD_KAFKA_CONF_UNKNOWN) throw ConfigError(name + ": unknown librdkafka property");
        if (res != RD_KAFKA_CONF_OK) {
            std::vector<std::string> secret{value.reveal()};
            throw ConfigError(name + ": invalid value (" + redact(errstr, secret) + ")");
        }
    }
    return conf;
}

HandlePtr new_handle(rd_kafka_type_t type, ConfPtr conf, ClientContext& ctx) {
    rd_kafka_conf_set_log_cb(conf.get(), log_cb);
    rd_kafka_conf_set_error_cb(conf.get(), error_cb);
    rd_kafka_conf_set_opaque(conf.get(), &ctx);
    (void)rd_kafka_conf_interceptor_add_on_new(conf.get(), "omnibus-thread-cache", on_new, nullptr);
    char errstr[512] = {0};
    rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
    if (!rk) throw ConfigError("cannot create Kafka " + ctx.role + ": " + redact(errstr, ctx.secrets));
    (void)conf.release();  // rd_kafka_new took ownership
    return HandlePtr(rk);
}

PartitionListPtr to_list(const std::vector<TopicPartition>& parts) {
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
    for (const auto& p : parts) rd_kafka_topic_partition_list_add(list.get(), p.topic.c_str(), p.partition);
    return list;
}

std::vector<TopicPartition> from_list(const rd_kafka_topic_partition_list_t* list) {
    std::vector<TopicPartition> out;
    if (!list) return out;
    out.reserve(static_cast<size_t>(list->cnt));
    for (int i = 0; i < list->cnt; ++i) out.push_back({list->elems[i].topic, list->elems[i].partition});
    return out;
}

}  // namespace omnibus::kafka::detail
