// Classifier: language, intent, entities and sentiment of one customer message, fast, local
// and explainable (docs/classification.md). Rules (intents' keywords and patterns, entity
// words, the sentiment lexicon) come from a YAML file, compiled once at load into one RE2
// set per language; config/classify.yaml is built in.
//
// Language: CLD2 for text in Latin script, with the script itself deciding where it can
// (kana → ja, Hangul → ko, Han → zh, Arabic → ar, Cyrillic → ru; Chinese with an English
// order number stays zh). A short or unreliable text takes the language whose keywords it
// matches alone, else the customer's previous language, else the channel's default.
// Intent: the first intent in file order whose keywords match in the message's language
// (English as the fallback set); `other` otherwise. Every result names what produced it.
//
// Threads: a Classifier is immutable after load; classify() is const and thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/diagnostic.h"
#include "envelope/envelope.h"

namespace omnibus::pipeline::classify {

// The languages the default rules cover (ISO 639-1).
const std::vector<std::string>& supported_languages();

struct ClassifyInput {
    std::string_view text;
    std::string_view subject;             // an email's subject, classified with the text
    std::string_view previous_language;   // the customer's last detected one, "" when none
    std::string_view channel_language;    // the channel's default, "" when none
};

struct Classification {
    std::string language;        // ISO 639-1, "" when nothing could tell
    double language_confidence = 0;
    std::string language_source;  // "script", "cld2", "keywords", "previous", "channel", "none"
    envelope::Intent intent;      // name, confidence, rule ("<intent>/<language>" or "none")
    std::vector<envelope::Entity> entities;
    envelope::Sentiment sentiment;
    std::vector<std::string> sentiment_signals;  // "negative_words:2", "all_caps", "profanity", "threat", …
};

class Classifier;

struct LoadResult {
    std::shared_ptr<const Classifier> classifier;  // set exactly when there are no errors
    std::vector<config::Diagnostic> errors;
    bool ok() const { return classifier != nullptr; }
    std::string report() const;  // one FILE:LINE:COL: message per line
};

class Classifier {
public:
    static LoadResult load_file(const std::string& path);
    static LoadResult load_string(std::string_view yaml, const std::string& display_name);
    static std::shared_ptr<const Classifier> builtin();  // config/classify.yaml as built in

    Classification classify(const ClassifyInput& in) const;
    // Sets language, language_confidence, intent, entities and sentiment on an inbound envelope.
    void apply(envelope::Envelope& env, std::string_view previous_language,
               std::string_view channel_language = {}) const;

    struct Impl;
    explicit Classifier(std::unique_ptr<Impl> impl);
    ~Classifier();
    Classifier(const Classifier&) = delete;
    Classifier& operator=(const Classifier&) = delete;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace omnibus::pipeline::classify
