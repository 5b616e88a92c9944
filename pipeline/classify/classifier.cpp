// Classification (see classifier.h).
#include "pipeline/classify/classifier.h"

#include <cstdio>  // before CLD2's header, which needs it and does not include it
#include <cld2/public/compact_lang_det.h>
#include <re2/re2.h>
#include <re2/set.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>

#include "config/text_file.h"

namespace CLD2 {
const char* LanguageCode(Language lang);  // lang_script.h, not among the public headers
}

namespace omnibus::pipeline::classify {

namespace detail {
extern const std::string_view kBuiltinClassifyRules;
}

namespace {

// The intent names of the envelope (issue contract); rules may use these only.
const std::array<std::string_view, 9> kIntentNames{"human_requested", "complaint",       "return_refund",
                                                     "payment",         "shipping",        "order_status",
                                                     "account",         "product_question", "greeting"};

bool is_cjk(char32_t c) {
    return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) ||
           (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F) || (c >= 0xF900 && c <= 0xFAFF);
}

// Decodes one UTF-8 sequence at s[i]; returns its length, 0 for an invalid byte.
std::size_t decode(std::string_view s, std::size_t i, char32_t& out) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
        out = b;
        return 1;
    }
    std::size_t n = (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    char32_t c = b & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (std::size_t k = 1; k < n; ++k) {
        const auto cb = static_cast<unsigned char>(s[i + k]);
        if ((cb >> 6) != 0x2) return 0;
        c = (c << 6) | (cb & 0x3F);
    }
    if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    out = c;
    return n;
}

// Lower case for the scripts of the rules (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic,
// fullwidth Latin). The UTF-8 length of a character never changes, so a byte offset in the
// folded text is the same offset in the original.
char32_t fold(char32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return c | 1;  // even upper, odd lower
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c & 1) ? c + 1 : c;  // odd upper
    if (c == 0x178) return 0xFF;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
    return c;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (c >> 12)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (c >> 18)));
        out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
}

// What may stand beside a word: ASCII that is not a letter or digit, and the non-ASCII
// spaces, punctuation and symbols customers type (¿¡«», quotes and dashes, CJK and fullwidth
// punctuation, emoji). Other non-ASCII counts as a letter.
constexpr bool ascii_boundary(char32_t c) {
    return !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}
bool is_boundary(char32_t c) {
    if (c < 0x80) return ascii_boundary(c);
    return (c >= 0xA0 && c <= 0xBF) || c == 0xD7 || c == 0xF7 || (c >= 0x2000 && c <= 0x2BFF) ||
           (c >= 0x3000 && c <= 0x303F) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0xFF00 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF20) || (c >= 0xFF3B && c <= 0xFF40) || (c >= 0xFF5B && c <= 0xFF65) ||
           (c >= 0x1F000 && c <= 0x1FAFF);
}

// Keyword lists by a key (a first word, a first character): open addressing over FNV-1a
// hashes, a few kilobytes for the built-in rules. Built once; find() is const.
struct Keyword {
    std::string text;  // folded
    int pattern = 0;
};
class KeywordTable {
public:
    std::vector<Keyword>& list(std::string_view key) {
        auto [it, fresh] = index_.try_emplace(std::string(key), static_cast<int>(lists_.size()));
        if (fresh) {
            keys_.emplace_back(key);
            lists_.emplace_back();
        }
        return lists_[static_cast<std::size_t>(it->second)];
    }
    // After the last list(): longest keyword first in every list, and the hash slots.
    void build() {
        for (auto& v : lists_)
            std::stable_sort(v.begin(), v.end(), [](const Keyword& a, const Keyword& b) { return a.text.size() > b.text.size(); });
        std::size_t n = 16;
        while (n < 2 * lists_.size()) n *= 2;
        slots_.assign(n, Slot{});
        for (std::size_t l = 0; l < lists_.size(); ++l) {
            const std::uint64_t h = hash(keys_[l]);
            std::size_t i = h & (n - 1);
            while (slots_[i].list >= 0) i = (i + 1) & (n - 1);
            slots_[i] = Slot{h, static_cast<int>(l)};
        }
        index_.clear();
    }
    const std::vector<Keyword>* find(std::string_view key) const {
        if (slots_.empty()) return nullptr;
        const std::uint64_t h = hash(key);
        for (std::size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
            const Slot& s = slots_[i];
            if (s.list < 0) return nullptr;
            if (s.hash == h && keys_[static_cast<std::size_t>(s.list)] == key) return &lists_[static_cast<std::size_t>(s.list)];
        }
    }
    bool empty() const { return lists_.empty(); }

private:
    struct Slot {
        std::uint64_t hash = 0;
        int list = -1;
    };
    static std::uint64_t hash(std::string_view s) {
        std::uint64_t h = 14695981039346656037ull;
        for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
        return h;
    }
    std::map<std::string, int, std::less<>> index_;  // while building
    std::vector<std::string> keys_;
    std::vector<std::vector<Keyword>> lists_;
    std::vector<Slot> slots_;
};

struct Scan {
    std::string clean;   // valid UTF-8: invalid bytes became spaces
    std::string folded;  // clean in lower case, byte for byte the same length
    int kana = 0, han = 0, hangul = 0, arabic = 0, cyrillic = 0, latin = 0;
    int upper = 0, lower = 0;
    bool digit = false, at = false, hash = false;  // for the entity patterns: what they need
    int letters() const { return kana + han + hangul + arabic + cyrillic + latin; }
};

Scan scan(std::string_view text) {
    Scan s;
    s.clean.reserve(text.size());
    s.folded.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        char32_t c = 0;
        const std::size_t n = decode(text, i, c);
        if (n == 0) {
            s.clean.push_back(' ');
            s.folded.push_back(' ');
            ++i;
            continue;
        }
        s.clean.append(text.substr(i, n));
        if (c < 0x80) {
            s.folded.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
            s.digit = s.digit || (c >= '0' && c <= '9');
            s.at = s.at || c == '@';
            s.hash = s.hash || c == '#';
        } else {
            append_utf8(s.folded, fold(c));
        }
        i += n;
        if (c >= 0x3040 && c <= 0x30FF) ++s.kana;
        else if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)) ++s.han;
        else if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F)) ++s.hangul;
        else if ((c >= 0x0600 && c <= 0x06FF) || (c >= 0x0750 && c <= 0x077F)) ++s.arabic;
        else if (c >= 0x0400 && c <= 0x04FF) {
            ++s.cyrillic;
            if (c <= 0x042F) ++s.upper;
            else ++s.lower;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7)) {
            ++s.latin;
            if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE)) ++s.upper;
            else ++s.lower;
        }
    }
    return s;
}

bool has_cjk(std::string_view kw) {
    for (std::size_t i = 0; i < kw.size();) {
        char32_t c = 0;
        const std::size_t n = decode(kw, i, c);
        if (n == 0) return false;
        if (is_cjk(c)) return true;
        i += n;
    }
    return false;
}

RE2::Options re2_options() {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(32 << 20);
    return o;
}

}  // namespace

const std::vector<std::string>& supported_languages() {
    static const std::vector<std::string> langs{"en", "zh", "es", "fr", "de", "pt", "ja", "ko", "ar", "ru"};
    return langs;
}

struct Classifier::Impl {
    struct Language {
        int negative = -1, positive = -1, profanity = -1, threats = -1;  // lexicons: pattern ids
    };
    // A pattern is a keyword list (an intent of one language, a lexicon) or a regex (an intent
    // of every language, an entity). One pass over the folded message finds every keyword of
    // every list and counts them per list; one RE2 set over the message finds the regexes.
    // (One RE2 set for the keywords too cost 2 µs a message: its DFA states are a kilobyte
    // each and a message walks a new one per byte, so the walk missed the cache at every
    // byte. The keyword index is a few kilobytes and stays in the cache.)
    struct Pattern {
        const Language* language = nullptr;  // intents: the language they belong to, nullptr: all (regex)
        std::size_t intent = std::string::npos;
    };
    std::vector<std::string> intent_names;  // in priority order
    std::map<std::string, Language, std::less<>> languages;
    std::unique_ptr<RE2> order_re, hash_re, tracking_word_re, tracking_re, email_re;
    std::vector<Pattern> patterns;  // id → what it is

    // Keywords in scripts with spaces match as whole words, by their first word; keywords
    // with Chinese, Japanese or Korean in them match anywhere, by their first character.
    // Longest first in every list: "order number" before "order".
    KeywordTable by_word;
    std::vector<Keyword> leading;  // keywords that begin with punctuation
    KeywordTable by_char;
    std::array<bool, 256> char_lead{};  // first bytes of by_char's characters

    std::unique_ptr<RE2::Set> regexes;
    std::vector<int> regex_ids;  // set index → pattern id
    int tracking_word_id = -1;   // tracking_word_re in the set

    const Language* language(std::string_view code) const {
        auto it = languages.find(code);
        return it == languages.end() ? nullptr : &it->second;
    }

    // What one message matches: per pattern id, how many times (non-overlapping, longest
    // first; regexes count 1), and the ids that matched.
    struct Matches {
        std::vector<std::uint16_t> counts;
        std::vector<std::size_t> next;  // per pattern: where its next occurrence may begin
        std::vector<int> hits;
    };
    void match(const std::string& clean, const std::string& folded, Matches& m) const {
        m.counts.assign(patterns.size(), 0);
        m.next.assign(patterns.size(), 0);
        m.hits.clear();
        auto record = [&](const std::vector<Keyword>& list, std::size_t at, bool whole_word) {
            for (const Keyword& k : list) {
                const std::size_t end = at + k.text.size();
                if (end > folded.size() || folded.compare(at, k.text.size(), k.text) != 0) continue;
                if (whole_word && end < folded.size()) {
                    char32_t c = 0;
                    if (decode(folded, end, c) == 0 || !is_boundary(c)) continue;
                }
                const auto id = static_cast<std::size_t>(k.pattern);
                if (at < m.next[id]) continue;  // inside the last occurrence, or a shorter one here
                if (m.counts[id]++ == 0) m.hits.push_back(k.pattern);
                m.next[id] = end;
            }
        };
        // folded is valid UTF-8: every decode() below reads one character, n >= 1.
        auto next_char = [&](std::size_t i, char32_t& c) -> std::size_t {
            const auto b = static_cast<unsigned char>(folded[i]);
            if (b < 0x80) {
                c = b;
                return 1;
            }
            return decode(folded, i, c);
        };
        const std::string_view text(folded);
        bool after_boundary = true;
        for (std::size_t i = 0; i < folded.size();) {
            char32_t c = 0;
            const std::size_t n = next_char(i, c);
            const bool boundary = is_boundary(c);
            if (char_lead[static_cast<unsigned char>(folded[i])]) {
                if (const auto* list = by_char.find(text.substr(i, n))) record(*list, i, false);
            }
            if (after_boundary && !boundary) {
                std::size_t j = i + n;
                for (char32_t d = 0; j < folded.size();) {
                    const std::size_t dn = next_char(j, d);
                    if (is_boundary(d)) break;
                    j += dn;
                }
                if (const auto* list = by_word.find(text.substr(i, j - i))) record(*list, i, true);
            } else if (after_boundary && !leading.empty()) {
                record(leading, i, true);
            }
            after_boundary = boundary;
            i += n;
        }
        thread_local std::vector<int> set_hits;
        set_hits.clear();
        if (regexes && regexes->Match(re2::StringPiece(clean.data(), clean.size()), &set_hits, nullptr)) {
            for (int h : set_hits) {
                const int id = regex_ids[static_cast<std::size_t>(h)];
                m.counts[static_cast<std::size_t>(id)] = 1;
                m.hits.push_back(id);
            }
        }
    }
    // The first intent (priority order) of `lang` among `hits`, or npos.
    std::size_t intent(const Language* lang, const std::vector<int>& hits) const {
        std::size_t best = std::string::npos;
        if (!lang) return best;
        for (int h : hits) {
            const Pattern& p = patterns[static_cast<std::size_t>(h)];
            if (p.intent != std::string::npos && (p.language == lang || !p.language)) best = std::min(best, p.intent);
        }
        return best;
    }
    // Adds a keyword list; returns its pattern id.
    int add_keywords(const std::vector<std::string>& words, Pattern what) {
        const int id = static_cast<int>(patterns.size());
        patterns.push_back(what);
        for (const auto& w : words) {
            Keyword k{scan(w).folded, id};  // folded exactly as messages are
            char32_t c = 0;
            const std::size_t n = decode(k.text, 0, c);
            if (n > 0 && has_cjk(k.text)) {
                char_lead[static_cast<unsigned char>(k.text[0])] = true;
                by_char.list(std::string_view(k.text).substr(0, n)).push_back(std::move(k));
                continue;
            }
            std::size_t j = 0;
            for (char32_t d = 0; j < k.text.size();) {
                const std::size_t dn = decode(k.text, j, d);
                if (is_boundary(d)) break;
                j += dn;
            }
            if (n == 0 || j == 0) {
                leading.push_back(std::move(k));
                continue;
            }
            const std::string first = k.text.substr(0, j);
            by_word.list(first).push_back(std::move(k));
        }
        return id;
    }
    // After the last add_keywords: longest first, so a longer keyword wins where both match.
    void sort_keywords() {
        by_word.build();
        by_char.build();
        std::stable_sort(leading.begin(), leading.end(),
                         [](const Keyword& a, const Keyword& b) { return a.text.size() > b.text.size(); });
    }
    // Adds a regex to the set; false (with RE2's message) when it does not parse.
    bool add_regex(const std::string& pattern, Pattern what, std::string* error) {
        if (!regexes) regexes = std::make_unique<RE2::Set>(re2_options(), RE2::UNANCHORED);
        if (regexes->Add(pattern, error) < 0) return false;
        regex_ids.push_back(static_cast<int>(patterns.size()));
        patterns.push_back(what);
        return true;
    }
};

Classifier::Classifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Classifier::~Classifier() = default;

std::string LoadResult::report() const {
    std::string out;
    for (const auto& d : errors) out += d.to_string() + "\n";
    return out;
}

namespace {

struct Loader {
    std::string file;
    std::vector<config::Diagnostic> errors;

    void error(const YAML::Node& n, std::string msg) {
        config::Position p;
        if (n.IsDefined() && n.Mark().line >= 0) p = {n.Mark().line + 1, n.Mark().column + 1};
        errors.push_back({file, p, std::move(msg)});
    }
    bool words(const YAML::Node& n, const std::string& where, std::vector<std::string>& out) {
        if (!n.IsSequence()) {
            error(n, where + ": expected a list of words");
            return false;
        }
        for (const auto& w : n) {
            if (!w.IsScalar() || w.Scalar().empty() || w.Scalar().size() > 200) {
                error(w, where + ": expected a word or phrase of 1 to 200 bytes");
                return false;
            }
            out.push_back(w.Scalar());
        }
        return true;
    }
    std::unique_ptr<RE2> compile(const YAML::Node& at, const std::string& where, const std::string& pattern) {
        auto re = std::make_unique<RE2>(pattern, re2_options());
        if (!re->ok()) {
            error(at, where + ": " + re->error());
            return nullptr;
        }
        return re;
    }
};

}  // namespace

LoadResult Classifier::load_file(const std::string& path) {
    auto content = config::read_text_file(path, 4 << 20);
    if (!content.text) return LoadResult{nullptr, {{path, {}, std::string("cannot read: ") + std::strerror(content.error)}}};
    return load_string(*content.text, path);
}

LoadResult Classifier::load_string(std::string_view yaml, const std::string& display_name) {
    Loader ld{display_name, {}};
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        config::Position p;
        if (e.mark.line >= 0) p = {e.mark.line + 1, e.mark.column + 1};
        return LoadResult{nullptr, {{display_name, p, e.msg}}};
    }
    if (!root.IsMap()) return LoadResult{nullptr, {{display_name, {}, "expected a mapping with version, intents, …"}}};
    auto impl = std::make_unique<Impl>();
    for (const auto& kv : root) {
        const std::string key = kv.first.Scalar();
        if (key != "version" && key != "intents" && key != "entities" && key != "sentiment")
            ld.error(kv.first, "unknown key '" + key + "' (expected version, intents, entities, sentiment)");
    }
    if (!root["version"] || root["version"].Scalar() != "1") ld.error(root["version"], "version: expected 1");

    // intents: name → {language: [words], regex: [patterns]}
    std::map<std::string, std::vector<std::pair<std::size_t, std::vector<std::string>>>> per_language;  // lang → (intent, words)
    std::vector<std::pair<std::size_t, std::string>> any_language;  // (intent, regex) of every language
    const YAML::Node intents = root["intents"];
    if (!intents || !intents.IsMap()) {
        ld.error(intents, "intents: expected a mapping of intent names");
    } else {
        for (const auto& kv : intents) {
            const std::string name = kv.first.Scalar();
            if (std::find(kIntentNames.begin(), kIntentNames.end(), name) == kIntentNames.end()) {
                ld.error(kv.first, "intents: unknown intent '" + name + "'");
                continue;
            }
            const std::size_t index = impl->intent_names.size();
            impl->intent_names.push_back(name);
            if (!kv.second.IsMap()) {
                ld.error(kv.second, "intents." + name + ": expected a mapping of languages to words");
                continue;
            }
            for (const auto& lk : kv.second) {
                const std::string lang = lk.first.Scalar();
                std::vector<std::string> ws;
                if (!ld.words(lk.second, "intents." + name + "." + lang, ws)) continue;
                if (lang == "regex") {
                    for (const auto& w : ws) {
                        if (!ld.compile(lk.second, "intents." + name + ".regex", w)) continue;
                        any_language.push_back({index, "(?i)" + w});
                        for (const auto& l : supported_languages()) (void)impl->languages[l];
                    }
                    continue;
                }
                if (lang.size() != 2 || !std::all_of(lang.begin(), lang.end(), [](char c) { return c >= 'a' && c <= 'z'; })) {
                    ld.error(lk.first, "intents." + name + ": '" + lang + "' is not an ISO 639-1 code or 'regex'");
                    continue;
                }
                per_language[lang].push_back({index, std::move(ws)});
            }
        }
    }
    // A regex belongs to every language: in the set once, with no language.
    for (auto& [intent, pattern] : any_language) {
        std::string err;
        if (!impl->add_regex(pattern, {nullptr, intent}, &err)) ld.error(intents, "intents (regex): " + err);
    }
    for (auto& [lang, lists] : per_language) {
        const auto& L = impl->languages[lang];
        for (auto& [intent, ws] : lists) impl->add_keywords(ws, {&L, intent});
    }

    // entities
    std::vector<std::string> order_words{"order"}, tracking_words{"tracking"};
    if (const YAML::Node e = root["entities"]) {
        if (e["order_words"]) order_words.clear(), ld.words(e["order_words"], "entities.order_words", order_words);
        if (e["tracking_words"])
            tracking_words.clear(), ld.words(e["tracking_words"], "entities.tracking_words", tracking_words);
    }
    auto words_only = [](const std::vector<std::string>& ws) {
        std::vector<std::string> sorted = ws;
        std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
        std::string p;
        for (std::size_t i = 0; i < sorted.size(); ++i) p += (i ? "|" : "") + RE2::QuoteMeta(sorted[i]);
        return p;
    };
    const YAML::Node none;
    impl->order_re = ld.compile(none, "entities.order_words",
                                "(?i)(?:" + words_only(order_words) +
                                    ")\\s*(?:no\\.?|nr\\.?|number|n[°º]|id)?\\s*[#:：]?\\s*([A-Za-z]{0,3}-?\\d[0-9A-Za-z-]{3,19})");
    impl->hash_re = ld.compile(none, "entities", "#\\s?([A-Za-z]{0,3}\\d{4,15})");
    impl->tracking_word_re = ld.compile(none, "entities.tracking_words",
                                        "(?i)(?:" + words_only(tracking_words) +
                                            ")\\s*(?:no\\.?|number|#|id)?\\s*[#:：]?\\s*([A-Za-z0-9]{8,30})");
    if (impl->tracking_word_re) {
        impl->tracking_word_id = static_cast<int>(impl->patterns.size());
        if (!impl->add_regex(impl->tracking_word_re->pattern(), {}, nullptr)) impl->tracking_word_id = -1;
    }
    impl->tracking_re = ld.compile(none, "entities",
                                   "(?:^|[^0-9A-Za-z])(1Z[0-9A-Z]{16}|[A-Z]{2}\\d{9}[A-Z]{2}|SF\\d{12,13}|JD\\d{12,15}|YT\\d{16})(?:$|[^0-9A-Za-z])");
    impl->email_re = ld.compile(none, "entities", "([A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\\.[A-Za-z0-9-]{1,63})*\\.[A-Za-z]{2,24})");

    // sentiment: kind → language → words
    if (const YAML::Node s = root["sentiment"]) {
        for (const auto& kv : s) {
            const std::string kind = kv.first.Scalar();
            if (kind != "negative" && kind != "positive" && kind != "profanity" && kind != "threats") {
                ld.error(kv.first, "sentiment: unknown list '" + kind + "' (expected negative, positive, profanity, threats)");
                continue;
            }
            if (!kv.second.IsMap()) {
                ld.error(kv.second, "sentiment." + kind + ": expected a mapping of languages to words");
                continue;
            }
            for (const auto& lk : kv.second) {
                const std::string lang = lk.first.Scalar();
                std::vector<std::string> ws;
                if (!ld.words(lk.second, "sentiment." + kind + "." + lang, ws)) continue;
                auto& L = impl->languages[lang];
                (kind == "negative" ? L.negative : kind == "positive" ? L.positive : kind == "profanity" ? L.profanity : L.threats) =
                    impl->add_keywords(ws, {});
            }
        }
    }
    if (impl->regexes && !impl->regexes->Compile())
        ld.error(root, "the regexes do not fit RE2's memory budget (32 MiB)");
    impl->sort_keywords();
    if (!ld.errors.empty()) return LoadResult{nullptr, std::move(ld.errors)};
    return LoadResult{std::make_shared<const Classifier>(std::move(impl)), {}};
}

std::shared_ptr<const Classifier> Classifier::builtin() {
    static const std::shared_ptr<const Classifier> c = [] {
        LoadResult r = load_string(detail::kBuiltinClassifyRules, "builtin:config/classify.yaml");
        if (!r.ok()) throw std::logic_error("the built-in classification rules do not load:\n" + r.report());
        return r.classifier;
    }();
    return c;
}

Classification Classifier::classify(const ClassifyInput& in) const {
    const Impl& m = *impl_;
    Classification out;
    std::string joined;
    std::string_view text = in.text;
    if (!in.subject.empty()) {
        joined.reserve(in.subject.size() + 1 + in.text.size());
        joined.append(in.subject).append("\n").append(in.text);
        text = joined;
    }
    const Scan sc = scan(text.substr(0, std::min<std::size_t>(text.size(), 16384)));
    const std::string& clean = sc.clean;
    thread_local Impl::Matches found;  // reused: no allocation per message
    m.match(clean, sc.folded, found);
    const std::vector<int>& hits = found.hits;

    // ---- language
    const int letters = sc.letters();
    auto set_language = [&](std::string code, double confidence, const char* source) {
        out.language = std::move(code);
        out.language_confidence = confidence;
        out.language_source = source;
    };
    if (sc.kana > 0 && sc.kana + sc.han >= sc.latin) set_language("ja", 0.95, "script");
    else if (sc.hangul >= 2 && sc.hangul >= sc.han) set_language("ko", 0.95, "script");
    else if (sc.han >= 2 || (sc.han >= 1 && sc.latin < 4)) set_language("zh", sc.han >= 4 ? 0.95 : 0.8, "script");
    else if (sc.arabic >= 2 && sc.arabic >= sc.latin) set_language("ar", 0.95, "script");
    else if (sc.cyrillic >= 2 && sc.cyrillic >= sc.latin) set_language("ru", sc.cyrillic >= 8 ? 0.9 : 0.75, "script");
    else if (letters > 0) {
        bool reliable = false;
        CLD2::Language lang3[3];
        int percent3[3];
        double score3[3];
        int text_bytes = 0;
        int valid = 0;
        const CLD2::Language lang = CLD2::ExtDetectLanguageSummaryCheckUTF8(
            clean.data(), static_cast<int>(clean.size()), true, nullptr, 0, lang3, percent3, score3, nullptr,
            &text_bytes, &reliable, &valid);
        std::string code = lang == CLD2::UNKNOWN_LANGUAGE ? "" : CLD2::LanguageCode(lang);
        if (auto dash = code.find('-'); dash != std::string::npos) code.resize(dash);
        if (code == "un" || code == "xx") code.clear();
        const bool supported = !code.empty() && m.languages.count(code);
        if (reliable && supported && letters >= 15) {
            set_language(code, std::min(1.0, percent3[0] / 100.0), "cld2");
        } else {
            // Short or unclear: the one language whose keywords it matches, else what we knew.
            std::string only;
            int matched = 0;
            for (const auto& [l, L] : m.languages) {
                if (l == "en" && !(code == "en")) continue;  // English words turn up everywhere
                if (m.intent(&L, hits) != std::string::npos) {
                    ++matched;
                    only = l;
                }
            }
            if (matched == 0 && code != "en" && m.intent(m.language("en"), hits) != std::string::npos)
                matched = 1, only = "en";  // "hi", "refund?": English when nothing else says otherwise
            if (matched == 1) set_language(only, 0.6, "keywords");
            else if (!in.previous_language.empty()) set_language(std::string(in.previous_language), 0.5, "previous");
            else if (!in.channel_language.empty()) set_language(std::string(in.channel_language), 0.4, "channel");
            else if (supported) set_language(code, reliable ? 0.5 : 0.3, "cld2");
            else out.language_source = "none";
        }
    } else if (!in.previous_language.empty()) {
        set_language(std::string(in.previous_language), 0.4, "previous");  // emoji, digits only
    } else if (!in.channel_language.empty()) {
        set_language(std::string(in.channel_language), 0.3, "channel");
    } else {
        out.language_source = "none";
    }

    // ---- intent: the message's language, then English (order words in English are common)
    const Impl::Language* L = m.language(out.language);
    std::size_t hit = m.intent(L, hits);
    std::string rule_lang = out.language;
    double confidence = 0.9;
    if (hit == std::string::npos && out.language != "en") {
        hit = m.intent(m.language("en"), hits);
        rule_lang = "en";
        confidence = 0.6;
    }
    if (hit != std::string::npos) {
        out.intent = envelope::Intent{m.intent_names[hit], confidence, m.intent_names[hit] + "/" + rule_lang};
    } else {
        out.intent = envelope::Intent{"other", 0.3, std::string("none")};
    }

    // ---- entities
    auto add = [&](std::string type, std::string value) {
        for (const auto& e : out.entities)
            if (e.value == value) return;
        if (out.entities.size() < 16) out.entities.push_back({std::move(type), std::move(value)});
    };
    // Each pattern runs only where it can match: the numbers need a digit, the e-mail an '@';
    // the tracking words (letters may follow them) are in the regex set.
    auto each = [&](const RE2* re, bool can_match, const char* type) {
        if (!re || !can_match) return;
        re2::StringPiece rest(clean.data(), clean.size());
        std::string v;
        for (int guard = 0; guard < 16 && RE2::FindAndConsume(&rest, *re, &v); ++guard) add(type, v);
    };
    const bool tracking_word = m.tracking_word_id >= 0 && found.counts[static_cast<std::size_t>(m.tracking_word_id)] > 0;
    each(m.tracking_re.get(), sc.digit, "tracking_number");
    each(m.tracking_word_re.get(), tracking_word, "tracking_number");
    each(m.order_re.get(), sc.digit, "order_number");
    each(m.hash_re.get(), sc.digit && sc.hash, "order_number");
    each(m.email_re.get(), sc.at, "email");

    // ---- sentiment: the language's lexicon, with English swearing and threats everywhere
    const Impl::Language* en = m.language("en");
    auto counted = [&](int id) { return id < 0 ? 0 : static_cast<int>(found.counts[static_cast<std::size_t>(id)]); };
    const int neg = counted(L ? L->negative : -1);
    const int pos = counted(L ? L->positive : -1);
    int profanity = counted(L ? L->profanity : -1);
    int threats = counted(L ? L->threats : -1);
    if (L != en && en) {
        profanity += counted(en->profanity);
        threats += counted(en->threats);
    }
    double score = 0;
    if (neg + pos > 0) score = 0.6 * (pos - neg) / static_cast<double>(pos + neg);
    if (neg) out.sentiment_signals.push_back("negative_words:" + std::to_string(neg));
    if (pos) out.sentiment_signals.push_back("positive_words:" + std::to_string(pos));
    const int cased = sc.upper + sc.lower;
    if (cased >= 8 && sc.upper * 10 >= cased * 7) {
        score -= 0.25;
        out.sentiment_signals.push_back("all_caps");
    }
    if (clean.find("!!") != std::string::npos || clean.find("！！") != std::string::npos) {
        score += score < 0 || neg ? -0.15 : 0.05;
        out.sentiment_signals.push_back("exclamations");
    }
    if (profanity) {
        score -= 0.35;
        out.sentiment_signals.push_back("profanity");
    }
    if (threats) {
        score -= 0.45;
        out.sentiment_signals.push_back("threat");
        add("chargeback_threat", "true");
    }
    if (out.intent.name == "complaint") score -= 0.2;
    score = std::clamp(score, -1.0, 1.0);
    out.sentiment.score = std::round(score * 100) / 100;
    out.sentiment.label = score <= -0.25  ? envelope::SentimentLabel::negative
                          : score >= 0.25 ? envelope::SentimentLabel::positive
                                          : envelope::SentimentLabel::neutral;
    return out;
}

void Classifier::apply(envelope::Envelope& env, std::string_view previous_language,
                       std::string_view channel_language) const {
    ClassifyInput in;
    if (env.content.text) in.text = *env.content.text;
    if (env.content.subject) in.subject = *env.content.subject;
    in.previous_language = previous_language;
    in.channel_language = channel_language;
    Classification c = classify(in);
    if (!c.language.empty()) {
        env.language = std::move(c.language);
        env.language_confidence = c.language_confidence;
    }
    env.intent = std::move(c.intent);
    for (auto& e : c.entities) env.entities.push_back(std::move(e));
    env.sentiment = c.sentiment;
}

}  // namespace omnibus::pipeline::classify
