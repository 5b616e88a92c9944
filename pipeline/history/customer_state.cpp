// CustomerState codec (see customer_state.h).
#include "pipeline/history/customer_state.h"

namespace omnibus::pipeline::history {
namespace {

constexpr unsigned char kVersion = 1;

void put_short(std::string& out, std::string_view s) {
    const std::size_t n = s.size() > 255 ? 255 : s.size();
    out.push_back(static_cast<char>(n));
    out.append(s.substr(0, n));
}

bool get_short(std::string_view& in, std::string& out) {
    if (in.empty()) return false;
    const std::size_t n = static_cast<unsigned char>(in[0]);
    if (in.size() < 1 + n) return false;
    out.assign(in.substr(1, n));
    in.remove_prefix(1 + n);
    return true;
}

}  // namespace

std::string encode(const CustomerState& s) {
    std::string out;
    out.push_back(static_cast<char>(kVersion));
    put_short(out, s.conversation);
    put_short(out, s.language);
    out += route::encode(s.handoff);
    return out;
}

std::optional<CustomerState> decode_customer_state(std::string_view in) {
    if (in.empty() || static_cast<unsigned char>(in[0]) != kVersion) return std::nullopt;
    in.remove_prefix(1);
    CustomerState s;
    if (!get_short(in, s.conversation) || !get_short(in, s.language)) return std::nullopt;
    auto h = route::decode_handoff(in);
    if (!h) return std::nullopt;
    s.handoff = std::move(*h);
    return s;
}

}  // namespace omnibus::pipeline::history
