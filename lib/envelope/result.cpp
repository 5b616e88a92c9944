// Names and one-line rendering of codec errors.
#include "envelope/result.h"

namespace omnibus::envelope {

std::string_view error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::missing_header: return "missing_header";
        case ErrorCode::bad_header: return "bad_header";
        case ErrorCode::too_large: return "too_large";
        case ErrorCode::bad_json: return "bad_json";
        case ErrorCode::bad_utf8: return "bad_utf8";
        case ErrorCode::too_deep: return "too_deep";
        case ErrorCode::missing_field: return "missing_field";
        case ErrorCode::wrong_type: return "wrong_type";
        case ErrorCode::bad_value: return "bad_value";
        case ErrorCode::duplicate_key: return "duplicate_key";
    }
    return "unknown";
}

std::string Error::to_string() const {
    std::string s;
    s.reserve(field.size() + message.size() + 2);
    s += field;
    s += ": ";
    s += message;
    return s;
}

}  // namespace omnibus::envelope
