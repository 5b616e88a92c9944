// Shared by the WhatsApp tests: the sample webhooks of tests/data/whatsapp/
// and a codec configured like a channel named "whatsapp-eu".
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "connectors/whatsapp/whatsapp_codec.h"

namespace omnibus::connectors::whatsapp::testing {

inline const std::filesystem::path kSource = OMNIBUS_SOURCE_DIR;

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string sample(const std::string& name) {
    return read_file(kSource / "tests/data/whatsapp" / (name + ".json"));
}

inline envelope::Timestamp at(const char* rfc3339) { return envelope::parse_rfc3339(rfc3339).value(); }

inline const envelope::Timestamp kReceived = at("2024-05-01T12:34:56.789Z");

inline const WebhookCodec& codec() {
    static const WebhookCodec c(CodecOptions{"whatsapp-eu", "DE"});
    return c;
}

// Parses a sample that must parse; fails the test otherwise.
inline WebhookEvents parse_sample(const std::string& name) {
    auto r = codec().parse(sample(name), kReceived);
    if (!r) throw std::runtime_error(name + ": " + r.error().to_string());
    return std::move(r).value();
}

// Compact form of a JSON text, to compare JSON regardless of layout.
inline std::string compact(const std::string& text) { return json::RawJson::parse(text).value().text(); }

}  // namespace omnibus::connectors::whatsapp::testing
