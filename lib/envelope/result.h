// Result<T>: a value or an Error, for the hot path where exceptions are not used.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace omnibus::envelope {

// Why a record could not be decoded. The names are stable and bounded, so they
// can be a metric label or a dead-letter reason code.
enum class ErrorCode : std::uint8_t {
    missing_header,  // a required CloudEvents header is absent
    bad_header,      // a header is present but its value is wrong or duplicated
    too_large,       // the body is over DecodeOptions::max_body_bytes
    bad_json,        // the body is not one JSON text
    bad_utf8,        // a JSON string is not valid UTF-8
    too_deep,        // arrays/objects nested deeper than DecodeOptions::max_depth
    missing_field,   // a required body field is absent (or null)
    wrong_type,      // a body field has the wrong JSON type
    bad_value,       // a body field has the right type but an invalid value
    duplicate_key,   // the same key twice in one object of the contract
};

std::string_view error_code_name(ErrorCode code);

struct Error {
    ErrorCode code;
    std::string field;    // "header ce_type", "sender.identities[1]", or "body"
    std::string message;  // what is wrong, e.g. "expected a string"

    // "sender.id: expected a string" — one line, safe to put in a header.
    std::string to_string() const;
    friend bool operator==(const Error&, const Error&) = default;
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &std::get<0>(v_); }
    const T* operator->() const { return &std::get<0>(v_); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : e_(std::move(error)) {}  // NOLINT
    bool ok() const { return !e_.has_value(); }
    explicit operator bool() const { return ok(); }
    const Error& error() const { return e_.value(); }

private:
    std::optional<Error> e_;
};

using Status = Result<void>;

}  // namespace omnibus::envelope
