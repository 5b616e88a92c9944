// ResponseHead: turns the header lines of an HTTP/1.x or HTTP/2 response, as libcurl hands
// them over one by one, into the final response's header list. Pure: no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace omnibus::http {

class ResponseHead {
public:
    // `max_bytes` bounds the bytes of all lines fed, interim (1xx) responses included.
    explicit ResponseHead(std::size_t max_bytes) : max_bytes_(max_bytes) {}

    // One line, with or without its CRLF. A status line ("HTTP/...") starts a new response and
    // drops the fields collected so far (those of a 100 Continue, or a proxy's CONNECT
    // answer). The empty line ending a block is ignored, and so is anything else that is not a
    // "name: value" field. A line starting with space or tab continues the previous field's
    // value (obsolete folding). Names are lower-cased, values trimmed of spaces and tabs.
    // Returns false once more than max_bytes have been fed; the line is then not kept.
    bool feed(std::string_view line);

    const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
    std::vector<std::pair<std::string, std::string>> take_fields() { return std::move(fields_); }

private:
    std::size_t max_bytes_;
    std::size_t bytes_ = 0;
    std::vector<std::pair<std::string, std::string>> fields_;
};

}  // namespace omnibus::http
