// Bounded RapidJSON parsing, UTF-8 validation and writer helpers (see json.h).
#include "envelope/json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace omnibus::json {
namespace {

// UTF-8 is checked before parsing (much faster than RapidJSON's per-char
// validation). Doubles are not converted by RapidJSON: its full-precision
// strtod reads out of bounds on inputs like "0.000…(hundreds of zeros)…1" and
// its normal precision is not exact, so DepthLimited::Double re-reads the
// number's text with std::from_chars (exact, bounded).
constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseInsituFlag;
// The cold-path replay that locates an error reads the original text.
constexpr unsigned kLocateFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

using StackAllocator = rapidjson::MemoryPoolAllocator<>;
using Reader = rapidjson::GenericReader<rapidjson::UTF8<>, rapidjson::UTF8<>, StackAllocator>;
using SizeType = rapidjson::SizeType;

// Forwards SAX events to a Document and stops the parse past max_depth.
static_assert(rapidjson::StreamTraits<rapidjson::InsituStringStream>::copyOptimization,
              "DepthLimited::Double relies on the number being parsed on a copy of the stream");

struct DepthLimited {
    Document& d;
    const rapidjson::InsituStringStream& is;  // to find the text of a number just read
    unsigned max_depth;
    bool check_strings;  // the text has \u escapes, which can decode to ill-formed UTF-8
    unsigned depth = 0;
    bool too_deep = false;
    bool bad_escape = false;
    bool bad_number = false;

    bool Null() { return d.Null(); }
    bool Bool(bool b) { return d.Bool(b); }
    bool Int(int i) { return d.Int(i); }
    bool Uint(unsigned i) { return d.Uint(i); }
    bool Int64(int64_t i) { return d.Int64(i); }
    bool Uint64(uint64_t i) { return d.Uint64(i); }
    bool Double(double approx) {
        // RapidJSON parses a number on a local copy of the stream and writes the
        // position back after this call, so `is` still points at its first
        // character; in situ, the number's characters are untouched.
        const char* start = is.src_;
        const char* end = start;
        while (is_number_char(*end)) ++end;  // the buffer is NUL-terminated
        double v = 0;
        const auto [ptr, ec] = std::from_chars(start, end, v);
        if (ec == std::errc::result_out_of_range && std::isfinite(approx) && std::fabs(approx) < 1) {
            v = approx;  // underflow: 0 (or RapidJSON's subnormal)
        } else if (ec != std::errc() || !std::isfinite(v)) {
            bad_number = true;  // overflow: JSON has no infinity
            return false;
        }
        return d.Double(v);
    }
    static bool is_number_char(char c) {
        return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-';
    }
    bool RawNumber(const char* s, SizeType n, bool copy) { return d.RawNumber(s, n, copy); }
    bool String(const char* s, SizeType n, bool copy) { return well_formed(s, n) && d.String(s, n, copy); }
    bool Key(const char* s, SizeType n, bool copy) { return well_formed(s, n) && d.Key(s, n, copy); }
    bool StartObject() { return enter() && d.StartObject(); }
    bool EndObject(SizeType n) { --depth; return d.EndObject(n); }
    bool StartArray() { return enter() && d.StartArray(); }
    bool EndArray(SizeType n) { --depth; return d.EndArray(n); }

    bool enter() {
        if (++depth > max_depth) {
            too_deep = true;
            return false;
        }
        return true;
    }
    bool well_formed(const char* s, SizeType n) {
        if (!check_strings || is_valid_utf8({s, n})) return true;
        bad_escape = true;
        return false;
    }
};

// Cold path: replays a failed parse and remembers where it stopped, so an
// error can name the field ("sender.display_name") rather than a byte offset.
struct PathTracker : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, PathTracker> {
    struct Frame {
        bool array;
        std::size_t begun = 0;  // elements begun (arrays)
        std::string key;        // last key read (objects)
    };
    std::vector<Frame> frames;
    unsigned max_depth;

    explicit PathTracker(unsigned max) : max_depth(max) {}

    bool Default() { begin_value(); return true; }
    bool Double(double v) { begin_value(); return std::isfinite(v); }  // as parse() refuses overflow
    bool String(const char* s, SizeType n, bool) { begin_value(); return is_valid_utf8({s, n}); }
    bool Key(const char* s, SizeType n, bool) {
        frames.back().key.assign(s, n);
        return is_valid_utf8({s, n});
    }
    bool StartObject() { return open(false); }
    bool StartArray() { return open(true); }
    bool EndObject(SizeType) { frames.pop_back(); return true; }
    bool EndArray(SizeType) { frames.pop_back(); return true; }

    void begin_value() {
        if (!frames.empty() && frames.back().array) ++frames.back().begun;
    }
    bool open(bool array) {
        if (frames.size() + 1 > max_depth) return false;
        begin_value();
        frames.push_back(Frame{array, 0, {}});
        return true;
    }
    std::string path() const { return excerpt(build_path(), 200); }
    std::string build_path() const {
        std::string p;
        for (std::size_t i = 0; i < frames.size(); ++i) {
            const Frame& f = frames[i];
            const bool innermost = i + 1 == frames.size();
            if (f.array) {
                // Inside a nested container: the element that holds it is the
                // last one begun. Innermost: the element being read now.
                const std::size_t idx = innermost ? f.begun : (f.begun == 0 ? 0 : f.begun - 1);
                p += '[';
                p += std::to_string(idx);
                p += ']';
            } else if (!f.key.empty()) {
                if (!p.empty()) p += '.';
                p += f.key;
            }
        }
        return p;
    }
};

std::string locate(std::string_view text, unsigned max_depth) {
    char buf[512];
    StackAllocator alloc(buf, sizeof buf);
    Reader reader(&alloc, 256);
    rapidjson::MemoryStream is(text.data(), text.size());
    PathTracker tracker(max_depth);
    reader.Parse<kLocateFlags>(is, tracker);
    return tracker.path();
}

// Length of the well-formed sequence starting at s[i] (1..4), or 0.
inline std::size_t utf8_sequence(const unsigned char* s, std::size_t i, std::size_t n) {
    const unsigned c = s[i];
    if (c < 0x80) return 1;
    auto cont = [&](std::size_t k, unsigned lo, unsigned hi) {
        return i + k < n && s[i + k] >= lo && s[i + k] <= hi;
    };
    if (c >= 0xC2 && c <= 0xDF) return cont(1, 0x80, 0xBF) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return cont(1, lo, hi) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) ? 4 : 0;
    }
    return 0;
}

// Length of the maximal ill-formed subpart at s[i] (Unicode §3.9, U+FFFD
// substitution of maximal subparts): the longest prefix of a valid sequence.
inline std::size_t utf8_invalid_run(const unsigned char* s, std::size_t i, std::size_t n) {
    const unsigned c = s[i];
    std::size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 1;
    std::size_t k = 1;
    for (; k <= need && i + k < n; ++k) {
        if (s[i + k] < lo || s[i + k] > hi) break;
        lo = 0x80;
        hi = 0xBF;
    }
    return k;
}

}  // namespace

struct ParseAccess {
    static Document& doc(ParsedDocument& p) { return *p.doc_; }
    static std::string& text(ParsedDocument& p) { return p.text_; }
};

bool parse(std::string_view text, ParsedDocument& out, const Limits& limits, ParseError* error) {
    auto fail = [&](ParseError::Kind kind, std::size_t offset, std::string message, bool locate_path) {
        if (error) {
            error->kind = kind;
            error->offset = offset;
            error->path = locate_path ? locate(text, limits.max_depth) : std::string{};
            error->message = std::move(message);
        }
        return false;
    };
    if (text.size() > limits.max_bytes)
        return fail(ParseError::Kind::too_large, 0,
                    std::to_string(text.size()) + " bytes, over the limit of " + std::to_string(limits.max_bytes),
                    false);
    if (const std::size_t bad = invalid_utf8_offset(text); bad != npos)
        return fail(ParseError::Kind::bad_utf8, bad, "invalid UTF-8 at offset " + std::to_string(bad), true);

    // Parsed in place in a copy: NUL-terminated, and padded so that RapidJSON's
    // aligned 16-byte SIMD loads past the terminator stay inside the buffer.
    std::string& buf = ParseAccess::text(out);
    buf.reserve(text.size() + 32);
    buf.assign(text);

    char stack_buf[512];
    StackAllocator stack_alloc(stack_buf, sizeof stack_buf);
    Reader reader(&stack_alloc, 256);
    rapidjson::InsituStringStream is(buf.data());
    Document& doc = ParseAccess::doc(out);
    DepthLimited handler{doc, is, limits.max_depth, text.find("\\u") != std::string_view::npos};
    rapidjson::ParseResult result;
    auto generate = [&](Document&) {  // the same Document as handler.d
        result = reader.Parse<kParseFlags>(is, handler);
        return !result.IsError();
    };
    doc.Populate(generate);

    if (result.IsError()) {
        const std::size_t at = result.Offset();
        if (handler.too_deep)
            return fail(ParseError::Kind::too_deep, at,
                        "nested deeper than " + std::to_string(limits.max_depth) + " levels at offset " +
                            std::to_string(at),
                        true);
        if (handler.bad_number)
            return fail(ParseError::Kind::bad_json, at, "number out of range (offset " + std::to_string(at) + ")",
                        true);
        if (handler.bad_escape)
            return fail(ParseError::Kind::bad_utf8, at,
                        "\\u escape is not a Unicode scalar value (lone surrogate) before offset " +
                            std::to_string(at),
                        true);
        return fail(ParseError::Kind::bad_json, at,
                    std::string(rapidjson::GetParseError_En(result.Code())) + " (offset " + std::to_string(at) + ")",
                    true);
    }
    // The stream reads a NUL byte as the end of input: anything left over is
    // data after the value (e.g. "{}\0junk").
    if (is.Tell() != text.size())
        return fail(ParseError::Kind::bad_json, is.Tell(),
                    "unexpected data after the JSON value (offset " + std::to_string(is.Tell()) + ")", false);
    return true;
}

std::size_t invalid_utf8_offset(std::string_view sv) {
    const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
    const std::size_t n = sv.size();
    std::size_t i = 0;
    while (i < n) {
        // ASCII fast path, 8 bytes at a time.
        while (i + 8 <= n) {
            std::uint64_t w;
            std::memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL) break;
            i += 8;
        }
        if (i >= n) break;
        const std::size_t len = utf8_sequence(s, i, n);
        if (len == 0) return i;
        i += len;
    }
    return npos;
}

void append_valid_utf8(std::string_view sv, std::string& out) {
    const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
    const std::size_t n = sv.size();
    out.reserve(out.size() + n + 8);
    std::size_t i = 0;
    while (i < n) {
        const std::size_t bad = invalid_utf8_offset(sv.substr(i));
        if (bad == npos) {
            out.append(sv.data() + i, n - i);
            return;
        }
        out.append(sv.data() + i, bad);
        i += bad;
        out.append("\xEF\xBF\xBD");  // U+FFFD
        i += utf8_invalid_run(s, i, n);
    }
}

std::string excerpt(std::string_view sv, std::size_t max_bytes) {
    const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
    const std::size_t n = sv.size();
    std::string out;
    out.reserve(n < max_bytes ? n : max_bytes + 3);
    std::size_t i = 0;
    while (i < n) {
        std::size_t len = utf8_sequence(s, i, n);
        if (out.size() + (len ? len : 1) > max_bytes) {
            out += "...";
            break;
        }
        if (len == 0 || s[i] < 0x20 || s[i] == 0x7F) {
            out += '?';
            i += len ? len : 1;
        } else {
            out.append(sv.data() + i, len);
            i += len;
        }
    }
    return out;
}

namespace {

// What a string needs before it is written: nothing (copied as it is), escapes (RapidJSON's
// String() writes them), or repair (invalid UTF-8). One pass, eight ASCII bytes at a time.
enum class StringShape { plain, escapes, invalid };

StringShape shape_of(std::string_view sv) {
    const auto* s = reinterpret_cast<const unsigned char*>(sv.data());
    const std::size_t n = sv.size();
    constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    auto has_zero_byte = [](std::uint64_t x) { return (x - ones) & ~x & highs; };
    bool escapes = false;
    std::size_t i = 0;
    while (i < n) {
        // A word without non-ASCII bytes, control characters, '"' or '\\' needs nothing.
        // (A flagged word may be a false alarm: the byte loop below decides exactly.)
        while (i + 8 <= n) {
            std::uint64_t w;
            std::memcpy(&w, s + i, 8);
            if ((w & highs) | ((w - ones * 0x20) & ~w & highs) | has_zero_byte(w ^ (ones * '"')) |
                has_zero_byte(w ^ (ones * '\\')))
                break;
            i += 8;
        }
        const std::size_t stop = i + 8 < n ? i + 8 : n;
        while (i < stop) {
            const unsigned c = s[i];
            if (c < 0x80) {
                if (c < 0x20 || c == '"' || c == '\\') escapes = true;
                ++i;
                continue;
            }
            const std::size_t len = utf8_sequence(s, i, n);
            if (len == 0) return StringShape::invalid;
            i += len;
        }
    }
    return escapes ? StringShape::escapes : StringShape::plain;
}

}  // namespace

// A key is written exactly as a string value is (RapidJSON's Key() is String()).
void write_key(Writer& w, std::string_view key) { write_string(w, key); }

void write_string(Writer& w, std::string_view s) {
    switch (shape_of(s)) {
        case StringShape::plain: w.plain_string(s); return;
        case StringShape::escapes: w.String(s.data(), static_cast<SizeType>(s.size())); return;
        case StringShape::invalid: break;
    }
    std::string fixed;
    append_valid_utf8(s, fixed);
    w.String(fixed.data(), static_cast<SizeType>(fixed.size()));
}

const char* type_name(const Value& v) {
    switch (v.GetType()) {
        case rapidjson::kNullType: return "null";
        case rapidjson::kFalseType:
        case rapidjson::kTrueType: return "boolean";
        case rapidjson::kObjectType: return "object";
        case rapidjson::kArrayType: return "array";
        case rapidjson::kStringType: return "string";
        case rapidjson::kNumberType: return "number";
    }
    return "unknown";
}

RawJson RawJson::from_value(const Value& v) {
    struct Scratch {
        rapidjson::StringBuffer buf;
        Writer w{buf};
    };
    thread_local Scratch s;
    s.buf.Clear();
    s.w.Reset(s.buf);
    v.Accept(s.w);
    RawJson out(std::string(s.buf.GetString(), s.buf.GetSize()));
    if (s.buf.GetSize() > 256 * 1024) {
        s.buf.Clear();
        s.buf.ShrinkToFit();
    }
    return out;
}

std::optional<RawJson> RawJson::parse(std::string_view text, const Limits& limits, ParseError* error) {
    LocalDocument<4096> d;
    if (!json::parse(text, d, limits, error)) return std::nullopt;
    return from_value(d.doc());
}

}  // namespace omnibus::json
