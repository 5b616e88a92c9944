// libFuzzer target for the WhatsApp webhook codec (hostile webhook bodies) and
// the Graph API response parser.
//
// Beyond "never crashes": every envelope the codec returns validates and
// survives encode → decode unchanged, every status event encodes to JSON that
// parses, errors name a field, and the ids are deterministic (parsing the same
// body twice gives the same events). unit_whatsapp replays
// tests/fuzz/corpus/whatsapp/ through this same function under g++.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "connectors/whatsapp/whatsapp_codec.h"
#include "connectors/whatsapp/whatsapp_graph.h"

namespace {

using namespace omnibus;
using namespace omnibus::connectors::whatsapp;

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "whatsapp_codec_fuzz: invariant broken: %s\n", what);
        std::abort();
    }
}

const WebhookCodec& codec() {
    static const WebhookCodec c(CodecOptions{"whatsapp-fuzz", "DE"});
    return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const envelope::Timestamp now{std::chrono::milliseconds(1714566896789)};

    auto events = codec().parse(in, now);
    if (!events) {
        require(!events.error().field.empty() && !events.error().message.empty(), "an error names field and problem");
    } else {
        for (const envelope::Envelope& env : events->messages) {
            const envelope::Status st = envelope::validate(env);
            if (!st) std::fprintf(stderr, "whatsapp_codec_fuzz: %s\n", st.error().to_string().c_str());
            require(st.ok(), "every envelope validates");
            const kafka::Record rec = envelope::encode(env, env.sender.id);
            auto back = envelope::decode(rec);
            if (!back) std::fprintf(stderr, "whatsapp_codec_fuzz: %s\n", back.error().to_string().c_str());
            require(back.ok() && *back == env, "decode(encode(envelope)) == envelope");
        }
        for (const auto& s : events->statuses) {
            json::LocalDocument<> doc;
            require(json::parse(connectors::encode_body(s), doc, json::Limits{}, nullptr), "a status encodes to JSON");
        }
        for (const Rejected& r : events->rejected)
            require(!r.error.field.empty() && !r.error.message.empty(), "a rejection names field and problem");
        for (const Degraded& d : events->degraded)
            require(d.message < events->messages.size(), "degraded points at a message");

        auto again = codec().parse(in, now);
        require(again.ok() && again->messages == events->messages && again->statuses == events->statuses,
                "parsing is deterministic");
    }

    for (const int http : {200, 400, 429, 500}) {
        const SendResponse r = parse_send_response(http, in);
        if (const auto* ok = std::get_if<SendAccepted>(&r)) {
            require(http == 200 && !ok->message_id.empty(), "only a 2xx with an id is a success");
        } else {
            const auto& e = std::get<GraphError>(r);
            require(e.http_status == http, "the error keeps the HTTP status");
            if (http >= 500 && e.code < 0) require(e.retryable(), "an unreadable 5xx is retried");
        }
    }
    return 0;
}
