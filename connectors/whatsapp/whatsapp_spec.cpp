// Options of the WhatsApp Cloud API channel (see whatsapp_spec.h).
#include "connectors/whatsapp/whatsapp_spec.h"

#include <chrono>
#include <string_view>

#include "config/diagnostic.h"
#include "config/section.h"
#include "phone/phone_normalizer.h"

namespace omnibus::connectors::whatsapp {
namespace {

using namespace std::chrono_literals;

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// "v23.0"
bool is_api_version(std::string_view s) {
    if (s.size() < 4 || s[0] != 'v') return false;
    const std::size_t dot = s.find('.');
    return dot != std::string_view::npos && all_digits(s.substr(1, dot - 1)) && all_digits(s.substr(dot + 1));
}

config::Spec template_spec() {
    config::Spec t("closed_window_template",
                   "Template message sent instead of a free-form reply when the customer's 24-hour customer "
                   "service window is closed (Graph API error 131047). Without it such replies go to "
                   "omnibus.outbox.human flagged window_closed for an agent.");
    t.string("name").describe("name of an approved message template without parameters").example("follow_up_v2");
    t.string("language").describe("its language code as approved in WhatsApp Manager").example("en_US");
    return t;  // both or neither: checked with the channel's other rules, in one pass
}

}  // namespace

config::Spec whatsapp_spec() {
    config::Spec s("whatsapp", "WhatsApp Business Platform (Cloud API): webhooks in, Graph API out");
    s.secret("app_secret")
        .required()
        .describe(
            "secret of the Meta app (App settings > Basic); every webhook POST must carry a valid "
            "X-Hub-Signature-256 made with it, or it is refused with 401")
        .example("${env:WHATSAPP_APP_SECRET}");
    s.secret("verify_token")
        .required()
        .describe(
            "the Verify token entered in the app's webhook settings; the GET handshake on "
            "/webhooks/<name> answers the challenge only when hub.verify_token matches")
        .example("${env:WHATSAPP_VERIFY_TOKEN}");
    s.secret("access_token")
        .required()
        .describe(
            "Graph API access token with whatsapp_business_messaging permission (a system user "
            "token that does not expire)")
        .example("${file:/etc/omnibus/whatsapp.token}");
    s.string("phone_number_id")
        .required()
        .describe(
            "ID of the business phone number (WhatsApp Manager > Phone numbers), used in "
            "POST /<version>/<phone_number_id>/messages")
        .example("106540352242922");
    s.string("graph_api_url")
        .def("https://graph.facebook.com")
        .describe("base URL of the Graph API (point it at a local fake in tests)");
    s.string("graph_api_version").def("v23.0").describe("Graph API version used for outbound requests");
    s.string("default_region")
        .describe(
            "ISO 3166-1 region used to read phone numbers written without a country code, e.g. in "
            "shared contact cards; sender numbers always carry theirs")
        .example("DE");
    s.section(template_spec());
    s.enumeration("window_unknown", {"closed", "open"})
        .def("closed")
        .describe(
            "what a reply to a customer whose last message this instance has not seen is treated as: "
            "closed sends the template or the human outbox (right for one instance, whose store sees "
            "every webhook); open sends it and lets WhatsApp refuse it if the window is closed (a failed "
            "status webhook with code 131047 follows)");
    s.integer("rate_limit")
        .def(80)
        .range(1, 1000)
        .describe(
            "outbound messages per second for this phone number (Cloud API default throughput is "
            "80/s, up to 1000/s after an upgrade)");
    s.integer("webhook_rate_limit")
        .def(0)
        .range(0, 1000000)
        .describe(
            "webhook requests per second accepted on /webhooks/<name> before answering 429 with "
            "Retry-After (one second of burst); 0: no limit. Meta paces its own deliveries and retries "
            "a 429, so a limit only protects the daemon from a flood that is not Meta");
    s.integer("max_retries")
        .def(5)
        .range(0, 50)
        .describe(
            "retries of a send that failed with a retryable error (HTTP 429/5xx, rate limits, "
            "transient errors), after which it goes to omnibus.deadletter");
    s.duration("retry_backoff")
        .def(1s)
        .range(10ms, 10min)
        .describe("wait before the first retry; doubled for each next one, with jitter");
    s.duration("retry_backoff_max").def(1min).range(10ms, 1h).describe("the longest wait between two retries");
    s.duration("request_timeout").def(10s).range(100ms, 5min).describe("timeout of one Graph API request");
    s.duration("dedup_window")
        .def(168h)
        .range(1min, 720h)
        .describe(
            "how long a platform message id is remembered to drop redelivered webhooks (Meta "
            "retries failed deliveries for up to 7 days). The ids are held in memory, 50-100 bytes "
            "each (bench_dedup): a million webhooks a day kept 7 days is 0.35-0.7 GB");
    s.size("max_webhook_body")
        .def("3MiB")
        .range(1024, 64 << 20)
        .describe("largest webhook body accepted (Meta sends at most 3 MB); larger ones get 413");
    s.check([](const config::Section& sec, config::Reporter& r) {
        if (!all_digits(sec.string("phone_number_id")))
            r.error(sec.position("phone_number_id"), "phone_number_id must be the numeric ID, not the phone number");
        const std::string& url = sec.string("graph_api_url");
        if (!url.starts_with("https://") && !url.starts_with("http://"))
            r.error(sec.position("graph_api_url"),
                    "graph_api_url must start with https:// (or http:// for a test fake)");
        else if (url.ends_with("/"))
            r.error(sec.position("graph_api_url"), "graph_api_url must not end with '/'");
        if (!is_api_version(sec.string("graph_api_version")))
            r.error(sec.position("graph_api_version"), "graph_api_version must look like v23.0");
        if (sec.has("default_region") && !phone::PhoneNormalizer::is_supported_region(sec.string("default_region")))
            r.error(sec.position("default_region"),
                    "default_region must be an ISO 3166-1 region code such as DE or BR, got \"" +
                        sec.string("default_region") + "\"");
        const config::Section& t = sec.section("closed_window_template");
        if (t.has("name") != t.has("language"))
            r.error(t.position(t.has("name") ? "name" : "language"),
                    "closed_window_template needs both name and language");
        if (sec.duration("retry_backoff") > sec.duration("retry_backoff_max"))
            r.error(sec.position("retry_backoff"), "retry_backoff must not exceed retry_backoff_max");
    });
    return s;
}

}  // namespace omnibus::connectors::whatsapp
