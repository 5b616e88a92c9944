// Request lookups, Response shorthands and the Responder (see request.h).
#include "edge/request.h"

#include "edge/http_text.h"
#include "log/log.h"

namespace omnibus::edge {

std::optional<std::string_view> Request::query_param(std::string_view name) const {
    for (const auto& [k, v] : query)
        if (k == name) return std::string_view(v);
    return std::nullopt;
}

std::optional<std::string_view> Request::header(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return std::string_view(h.value);
    return std::nullopt;
}

Response Response::json(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

Response Response::text(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = "text/plain; charset=utf-8";
    return r;
}

Response Response::error(int status, std::string_view message) {
    std::string body = "{\"error\":\"";
    log::json_escape(message, body);
    body += "\"}";
    return json(status, std::move(body));
}

bool Responder::respond(Response response) const {
    if (!exchange_ || !exchange_->claim()) return false;
    exchange_->deliver(std::move(response));
    return true;
}

}  // namespace omnibus::edge
