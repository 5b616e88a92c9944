// A schema shaped like omnibusd's (kafka, admin, channels of two fake types)
// shared by the config tests, plus helpers to load YAML text against it.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"
#include "config/spec.h"

namespace omnibus::config::testing {

using namespace std::chrono_literals;

inline Spec kafka_spec() {
    Spec kafka("kafka", "Kafka connection");
    kafka.boolean("embedded").def(false).describe("start librdkafka's mock cluster in-process (dev only)");
    kafka.string("brokers").describe("comma-separated bootstrap list").example("k1:9092,k2:9092");
    kafka.integer("partitions").def(6).range(1, 10000).describe("partitions of each topic");
    kafka.duration("timeout").def("5s").range(100ms, 1min).describe("request timeout");
    kafka.size("max_message").def("1MiB").range(1, 1 << 30).describe("largest message produced");
    kafka.enumeration("compression", {"none", "gzip", "lz4", "zstd"}).def("lz4").describe("producer compression");
    kafka.real("sample_ratio").def(0.5).range(0.0, 1.0).describe("share of messages traced");
    kafka.secret("password").describe("SASL password");
    kafka.secret_map("client").describe("librdkafka properties passed through");
    kafka.check([](const Section& s, Reporter& r) {
        if (!s.boolean("embedded") && !s.has("brokers")) {
            r.error(s.position("brokers"), "kafka.brokers is required unless kafka.embedded is true");
        }
    });
    return kafka;
}

inline Spec admin_spec() {
    Spec admin("admin", "Admin API");
    admin.address("listen").def("127.0.0.1:9090").describe("where the admin API listens");
    admin.strings("allowed_origins").describe("CORS origins");
    admin.secret("token").describe("bearer token required when not on loopback");
    return admin;
}

inline const Spec& whatsapp_spec() {
    static const Spec spec = [] {
        Spec s("whatsapp", "WhatsApp Cloud API webhook");
        s.secret("app_secret").required().describe("signs webhook payloads");
        s.string("phone_number_id").required().describe("the business phone number");
        s.duration("window").def("24h").describe("customer service window");
        return s;
    }();
    return spec;
}

inline const Spec& email_spec() {
    static const Spec spec = [] {
        Spec s("email", "IMAP in, SMTP out");
        s.address("imap").required().describe("IMAP server");
        s.duration("poll").def("1m").describe("how often to poll");
        s.strings("folders").def({"INBOX"}).describe("folders to read");
        return s;
    }();
    return spec;
}

inline BlockTypes channel_types() {
    return BlockTypes{[](std::string_view type) -> const Spec* {
                          if (type == "whatsapp") return &whatsapp_spec();
                          if (type == "email") return &email_spec();
                          return nullptr;
                      },
                      {"email", "whatsapp"}};
}

inline const Spec& schema() {
    static const Spec spec = [] {
        Spec root("omnibus", "omnibus daemon");
        root.string("instance").required().describe("this instance's name");
        root.enumeration("log_level", {"debug", "info", "warn", "error"}).def("info");
        root.section(kafka_spec());
        root.section(admin_spec());
        root.blocks("channels", channel_types()).describe("channel instances");
        return root;
    }();
    return spec;
}

// An environment with exactly these variables: the process's own never leaks into a test.
inline LoadOptions with_env(std::map<std::string, std::string> vars = {}) {
    LoadOptions o;
    o.getenv = [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
    return o;
}

inline LoadResult load(std::string_view yaml, const LoadOptions& options = with_env()) {
    return load_string(yaml, "omnibus.yaml", schema(), options);
}

inline std::vector<std::string> messages(const LoadResult& r) {
    std::vector<std::string> out;
    for (const Diagnostic& d : r.diagnostics) out.push_back(d.to_string());
    return out;
}

// A minimal valid document, for tests that look at one option at a time.
inline constexpr std::string_view kMinimal = "instance: a\nkafka:\n  embedded: true\n";

}  // namespace omnibus::config::testing
