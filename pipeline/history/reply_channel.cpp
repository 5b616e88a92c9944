// Reply channel choice (see reply_channel.h).
#include "pipeline/history/reply_channel.h"

#include <vector>

namespace omnibus::pipeline::history {

std::optional<std::chrono::milliseconds> messaging_window(std::string_view channel_type) {
    if (channel_type == "whatsapp" || channel_type == "messenger" || channel_type == "instagram")
        return std::chrono::hours(24);
    return std::nullopt;
}

namespace {

bool window_open(const HistoryEntry& last_inbound, std::int64_t now_ms) {
    auto w = messaging_window(last_inbound.channel_type);
    return !w || now_ms - last_inbound.at_ms < w->count();
}

ReplyTarget target_of(const HistoryEntry& e, std::int64_t now_ms) {
    return ReplyTarget{e.channel_type, e.channel_name, e.sender, window_open(e, now_ms), false};
}

}  // namespace

ReplyChoice choose_reply_channel(std::span<const HistoryEntry> newest_first, std::string_view named_type,
                                 std::string_view named_channel, std::optional<std::string_view> named_recipient,
                                 std::int64_t now_ms) {
    // The newest inbound entry of each channel, newest channel first.
    std::vector<const HistoryEntry*> channels;
    for (const HistoryEntry& e : newest_first) {
        if (e.direction != envelope::Direction::inbound || e.channel_name.empty() || e.sender.empty()) continue;
        bool known = false;
        for (const HistoryEntry* c : channels) known = known || c->channel_name == e.channel_name;
        if (!known) channels.push_back(&e);
    }
    if (!named_channel.empty()) {
        for (const HistoryEntry* c : channels) {
            if (c->channel_name != named_channel) continue;
            ReplyTarget t = target_of(*c, now_ms);
            if (named_recipient) t.recipient = std::string(*named_recipient);
            t.chosen_by_reply = true;
            return {t, {}};
        }
        if (!named_recipient)
            return {std::nullopt, "the customer has not written on channel " + std::string(named_channel) +
                                      " and the reply names no recipient"};
        ReplyTarget t{std::string(named_type), std::string(named_channel), std::string(*named_recipient), true, true};
        return {t, {}};
    }
    if (channels.empty()) return {std::nullopt, "the customer has never written on any channel"};
    for (const HistoryEntry* c : channels)
        if (window_open(*c, now_ms)) return {target_of(*c, now_ms), {}};
    return {target_of(*channels.front(), now_ms), {}};
}

}  // namespace omnibus::pipeline::history
