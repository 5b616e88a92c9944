// JSON on the hot path, on RapidJSON: bounded parsing of untrusted text, UTF-8
// checks, writer helpers and RawJson (a JSON value kept as compact text).
//
// Reusable beyond the envelope: connectors parse webhook bodies with
// json::parse and keep the platform's payload as a json::RawJson.
// Thread-safety: everything here is stateless; a Document belongs to one thread.
#pragma once

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace omnibus::json {

using Value = rapidjson::Value;

// RapidJSON's writer, plus a string that needs no escaping copied in one go:
// RapidJSON escapes byte by byte, which was most of an envelope's encode time.
class Writer : public rapidjson::Writer<rapidjson::StringBuffer> {
public:
    using Base = rapidjson::Writer<rapidjson::StringBuffer>;
    using Base::Base;
    // `s` must be valid UTF-8 without control characters, '"' or '\\' (what
    // write_string checks); the output is then what String() would write.
    void plain_string(std::string_view s) {
        Prefix(rapidjson::kStringType);
        char* out = os_->Push(s.size() + 2);
        out[0] = '"';
        if (!s.empty()) std::memcpy(out + 1, s.data(), s.size());
        out[s.size() + 1] = '"';
        EndValue(true);
    }
};
// Nodes and the parse stack both come from memory pools, so a LocalDocument
// parses a typical message without touching malloc.
using Document = rapidjson::GenericDocument<rapidjson::UTF8<>, rapidjson::MemoryPoolAllocator<>,
                                            rapidjson::MemoryPoolAllocator<>>;

// What parse() fills: a Document and the copy of the text it was parsed from
// in place (its strings point into that copy, nothing else is copied).
class ParsedDocument {
public:
    ParsedDocument(const ParsedDocument&) = delete;
    ParsedDocument& operator=(const ParsedDocument&) = delete;

    Document& doc() { return *doc_; }
    const Document& doc() const { return *doc_; }

protected:
    explicit ParsedDocument(Document* d) : doc_(d) {}
    ~ParsedDocument() = default;

private:
    friend struct ParseAccess;
    Document* doc_;
    std::string text_;
};

// A ParsedDocument whose first N bytes of nodes and 1 KiB of parse stack live
// inside this object (put it on the stack). Larger documents spill to
// malloc'd chunks. Parse into it once.
template <std::size_t N = 8192>
class LocalDocument final : public ParsedDocument {
public:
    LocalDocument()
        : ParsedDocument(&doc_),
          nodes_alloc_(nodes_, sizeof nodes_, kChunk),
          stack_alloc_(stack_, sizeof stack_, kChunk),
          doc_(&nodes_alloc_, sizeof stack_, &stack_alloc_) {}

private:
    static constexpr std::size_t kChunk = 64 * 1024;
    alignas(16) char nodes_[N];
    alignas(16) char stack_[1024];
    rapidjson::MemoryPoolAllocator<> nodes_alloc_;
    rapidjson::MemoryPoolAllocator<> stack_alloc_;
    Document doc_;
};

struct Limits {
    std::size_t max_bytes = 1 << 20;  // whole text
    unsigned max_depth = 64;          // nested arrays/objects, the root counts as 1
};

struct ParseError {
    enum class Kind { too_large, bad_json, bad_utf8, too_deep } kind;
    std::size_t offset = 0;  // byte offset where parsing stopped
    std::string path;        // where in the document, e.g. "sender.identities[1]"; "" = root
    std::string message;     // e.g. "invalid UTF-8 in string at offset 57"
};

// Parses one JSON text into out. Never recurses on the input (iterative
// parser, depth bounded); rejects ill-formed UTF-8 (raw or from \u escapes
// such as a lone surrogate), data after the value, numbers beyond a double
// and anything over limits. Doubles are read exactly (std::from_chars).
bool parse(std::string_view text, ParsedDocument& out, const Limits& limits, ParseError* error);

// ---- UTF-8 ------------------------------------------------------------------

inline constexpr std::size_t npos = std::string_view::npos;

// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or npos.
std::size_t invalid_utf8_offset(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return invalid_utf8_offset(s) == npos; }
// Appends s to out with every ill-formed sequence replaced by U+FFFD.
void append_valid_utf8(std::string_view s, std::string& out);
// At most max_bytes of s for an error message or a header: control characters
// and ill-formed UTF-8 become '?', a cut is marked with "...".
std::string excerpt(std::string_view s, std::size_t max_bytes = 64);

// ---- writing ----------------------------------------------------------------

// Keys are the code's own ASCII names; one that needs escaping takes RapidJSON's path.
void write_key(Writer& w, std::string_view key);
// Writes s as a JSON string; ill-formed UTF-8 is replaced by U+FFFD, so the
// output is always valid JSON whatever the caller passes.
void write_string(Writer& w, std::string_view s);
// Writes already-serialized, valid JSON as is.
inline void write_raw(Writer& w, std::string_view json) {
    w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
}

inline std::string_view view(const Value& v) { return {v.GetString(), v.GetStringLength()}; }
const char* type_name(const Value& v);  // "string", "object", … for error messages

// ---- RawJson ----------------------------------------------------------------

// A JSON value (any type) kept as compact text, e.g. a platform's raw payload.
// It can only be made from a parsed value or by validating text, so writing it
// verbatim into a larger document always yields valid JSON.
class RawJson {
public:
    static RawJson from_value(const Value& v);
    // Validates (with limits) and compacts text; nullopt with *error on failure.
    static std::optional<RawJson> parse(std::string_view text, const Limits& limits = {},
                                        ParseError* error = nullptr);

    const std::string& text() const { return text_; }
    friend bool operator==(const RawJson&, const RawJson&) = default;

private:
    explicit RawJson(std::string text) : text_(std::move(text)) {}
    std::string text_;
};

}  // namespace omnibus::json
