// Which channel a reply goes out on, and to which of the customer's identities. Pure: from
// the customer's newest history entries (history_store.h) and the reply.
//
//   1. A reply that names a channel (channel.name) goes there: to its recipient when it names
//      one, else to the identity the customer last wrote from on that channel. A named channel
//      the customer never wrote on, without a recipient, has nobody to send to.
//   2. Otherwise the channel the customer last wrote on, unless that channel's messaging
//      window is closed (WhatsApp, Messenger and Instagram answer free-form only within 24 h
//      of the customer's last message there): then the newest channel whose window is open
//      or which has none (email, web chat, app, Telegram, LINE). When every channel's window
//      is closed, the last one anyway: its connector applies its policy (a template, or back
//      to the human outbox flagged window_closed).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pipeline/history/history_store.h"

namespace omnibus::pipeline::history {

// The free-form messaging window of a channel type after the customer's last message there;
// nullopt for types without one.
std::optional<std::chrono::milliseconds> messaging_window(std::string_view channel_type);

struct ReplyTarget {
    std::string channel_type;
    std::string channel_name;
    std::string recipient;     // identity string, e.g. "whatsapp:15551234567"
    bool window_open = true;   // false: the chosen channel's window is closed (case 2, last resort)
    bool chosen_by_reply = false;
};

struct ReplyChoice {
    std::optional<ReplyTarget> target;
    std::string problem;  // why there is none
};

// `newest_first`: the customer's entries, newest first (inbound ones matter). `named_*`: the
// reply's channel (empty when it leaves the choice to the pipeline) and recipient.
ReplyChoice choose_reply_channel(std::span<const HistoryEntry> newest_first, std::string_view named_type,
                                 std::string_view named_channel, std::optional<std::string_view> named_recipient,
                                 std::int64_t now_ms);

}  // namespace omnibus::pipeline::history
