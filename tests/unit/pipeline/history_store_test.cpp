// HistoryStore: entries in time order per customer, context within count and byte budgets,
// paging and filters, conversations, erasure and retention with their changelog changes, and
// restore from a changelog into an empty store.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "pipeline/history/history_store.h"
#include "support/scratch_dir.h"

using namespace omnibus::pipeline::history;
using omnibus::test::ScratchDir;
namespace envelope = omnibus::envelope;

namespace {

HistoryEntry entry(std::string customer, std::int64_t at, std::string id, std::string text,
                   std::string channel = "wa", std::string conversation = "conv-1") {
    HistoryEntry e;
    e.customer = std::move(customer);
    e.at_ms = at;
    e.id = std::move(id);
    e.conversation = std::move(conversation);
    e.conversation_started_ms = 1000;
    e.channel_type = "whatsapp";
    e.channel_name = std::move(channel);
    e.content_type = "text";
    e.text = std::move(text);
    e.author = "customer";
    e.platform_message_id = "wamid." + e.id;
    e.sender = "whatsapp:1555";
    return e;
}

std::vector<std::string> ids(const std::vector<HistoryEntry>& v) {
    std::vector<std::string> out;
    for (const auto& e : v) out.push_back(e.id);
    return out;
}

}  // namespace

TEST_CASE("history store: an entry encodes and decodes to itself, keys sort by customer then time",
          "[pipeline][history]") {
    HistoryEntry e = entry("c-1", 1700000000123, "m-1", "¿Dónde está mi pedido? 🚚");
    e.subject = "Order";
    e.attachments = 2;
    e.direction = envelope::Direction::outbound;
    const std::string key = entry_key(e.customer, e.at_ms, e.id);
    CHECK(key == "h/c-1/0000018bcfe5687b/m-1");
    auto back = decode_entry(key, encode(e));
    REQUIRE(back);
    CHECK(*back == e);
    CHECK(entry_key("c-1", 5, "z") < entry_key("c-1", 6, "a"));
    CHECK(entry_key("c-1", 999999999999, "z") < entry_key("c-10", 0, "a"));
    CHECK_FALSE(decode_entry("h/c-1/nothex0000000000/m", encode(e)));
    CHECK_FALSE(decode_entry(key, "{not json"));
}

TEST_CASE("history store: last, recent and find see one customer's entries in time order",
          "[pipeline][history]") {
    ScratchDir dir;
    HistoryStore s(dir.path() + "/h");
    // Written out of order, across two customers whose ids share a prefix.
    s.put(entry("c-1", 3000, "m3", "third"));
    s.put(entry("c-1", 1000, "m1", "first"));
    s.put(entry("c-10", 2500, "x1", "someone else"));
    s.put(entry("c-1", 2000, "m2", "second"));

    REQUIRE(s.last("c-1"));
    CHECK(s.last("c-1")->id == "m3");
    CHECK(s.last("c-10")->id == "x1");
    CHECK_FALSE(s.last("c-2"));
    s.put(entry("c-10", 2600, "x2", "a new conversation", "wa", "conv-2"));
    auto tip = s.last_conversation("c-10");
    REQUIRE(tip);
    CHECK(tip->at_ms == 2600);
    CHECK(tip->conversation == "conv-2");
    CHECK(tip->conversation_started_ms == 1000);
    CHECK(s.last_conversation("c-1")->at_ms == 3000);
    CHECK_FALSE(s.last_conversation("c-2"));
    CHECK(ids(s.recent("c-1", {}, 10, 1 << 20)) == std::vector<std::string>{"m1", "m2", "m3"});
    // Before a key: what came earlier only.
    CHECK(ids(s.recent("c-1", entry_key("c-1", 3000, "m3"), 10, 1 << 20)) == std::vector<std::string>{"m1", "m2"});
    CHECK(ids(s.recent("c-1", entry_key("c-1", 2500, "new"), 10, 1 << 20)) == std::vector<std::string>{"m1", "m2"});
    // Count and byte budgets keep the newest.
    CHECK(ids(s.recent("c-1", {}, 2, 1 << 20)) == std::vector<std::string>{"m2", "m3"});
    CHECK(ids(s.recent("c-1", {}, 10, 11)) == std::vector<std::string>{"m2", "m3"});  // "second"+"third" = 11
    CHECK(ids(s.recent("c-1", {}, 10, 10)) == std::vector<std::string>{"m3"});
    CHECK(s.recent("c-1", {}, 0, 100).empty());
    CHECK(s.find(entry_key("c-1", 2000, "m2"))->text == "second");
    CHECK_FALSE(s.find(entry_key("c-1", 2001, "m2")));
    CHECK(s.holds("c-1"));
    CHECK_FALSE(s.holds("c-"));
}

TEST_CASE("history store: messages are paged newest first and filter by channel and conversation",
          "[pipeline][history]") {
    ScratchDir dir;
    HistoryStore s(dir.path() + "/h");
    for (int i = 0; i < 7; ++i)
        s.put(entry("c-1", 1000 + i, "m" + std::to_string(i), "t", i % 2 ? "mail" : "wa", i < 4 ? "conv-a" : "conv-b"));

    MessageQuery q;
    q.limit = 3;
    auto p1 = s.messages("c-1", q);
    CHECK(ids(p1.entries) == std::vector<std::string>{"m6", "m5", "m4"});
    REQUIRE(p1.next);
    q.before = p1.next;
    auto p2 = s.messages("c-1", q);
    CHECK(ids(p2.entries) == std::vector<std::string>{"m3", "m2", "m1"});
    q.before = p2.next;
    auto p3 = s.messages("c-1", q);
    CHECK(ids(p3.entries) == std::vector<std::string>{"m0"});
    CHECK_FALSE(p3.next);

    MessageQuery by_channel;
    by_channel.channel = "mail";
    CHECK(ids(s.messages("c-1", by_channel).entries) == std::vector<std::string>{"m5", "m3", "m1"});
    MessageQuery by_conv;
    by_conv.conversation = "conv-a";
    by_conv.channel = "wa";
    CHECK(ids(s.messages("c-1", by_conv).entries) == std::vector<std::string>{"m2", "m0"});

    auto convs = s.conversations("c-1");
    REQUIRE(convs.size() == 2);
    CHECK(convs[0].id == "conv-b");  // most recent first
    CHECK(convs[0].messages == 3);
    CHECK(convs[1].id == "conv-a");
    CHECK(convs[1].messages == 4);
    CHECK(convs[1].last_ms == 1003);
    CHECK(convs[1].channels == std::vector<std::string>{"wa", "mail"});
}

TEST_CASE("history store: erasure and retention return the tombstones to mirror", "[pipeline][history]") {
    ScratchDir dir;
    HistoryStore s(dir.path() + "/h");
    s.put(entry("c-1", 1000, "a", "x"));
    s.put(entry("c-1", 5000, "b", "x"));
    s.put(entry("c-2", 1500, "c", "x"));
    s.put(entry("c-2", 9000, "d", "x"));

    auto erased = s.erase_customer("c-1");
    REQUIRE(erased.size() == 2);
    CHECK(erased[0] == Change{entry_key("c-1", 1000, "a"), std::nullopt});
    CHECK_FALSE(s.holds("c-1"));
    CHECK(s.holds("c-2"));

    // Retention in small scan steps, resuming at the cursor.
    std::string cursor;
    std::vector<Change> purged;
    int calls = 0;
    do {
        auto part = s.purge_before(2000, cursor, 1);
        purged.insert(purged.end(), part.begin(), part.end());
        ++calls;
    } while (!cursor.empty() && calls < 10);
    REQUIRE(purged.size() == 1);
    CHECK(purged[0].key == entry_key("c-2", 1500, "c"));
    CHECK(ids(s.all("c-2")) == std::vector<std::string>{"d"});
}

TEST_CASE("history store: a store restored from the changelog equals the one that wrote it, checkpoints survive "
          "a reopen",
          "[pipeline][history]") {
    ScratchDir dir;
    std::vector<Change> changelog;
    {
        HistoryStore s(dir.path() + "/a");
        changelog.push_back(s.put(entry("c-1", 1000, "a", "one")));
        changelog.push_back(s.put(entry("c-1", 2000, "b", "two")));
        changelog.push_back(s.put(entry("c-2", 1500, "c", "three")));
        changelog.push_back(s.remove(entry_key("c-1", 1000, "a")));
        auto more = s.erase_customer("c-2");
        changelog.insert(changelog.end(), more.begin(), more.end());
        CHECK_FALSE(s.checkpoint());
        s.write_checkpoint(42);
    }
    {
        HistoryStore reopened(dir.path() + "/a");
        CHECK(reopened.checkpoint() == 42);
        CHECK(ids(reopened.all("c-1")) == std::vector<std::string>{"b"});
        reopened.clear_checkpoint();
        CHECK_FALSE(reopened.checkpoint());
        reopened.wipe();
        CHECK_FALSE(reopened.holds("c-1"));
    }
    HistoryStore restored(dir.path() + "/b");
    restored.apply_changelog(changelog);
    CHECK(ids(restored.all("c-1")) == std::vector<std::string>{"b"});
    CHECK(restored.all("c-1")[0].text == "two");
    CHECK_FALSE(restored.holds("c-2"));
    // Foreign keys on the changelog are ignored, not stored.
    restored.apply_changelog(std::vector<Change>{{"m/checkpoint", std::string("7")}});
    CHECK_FALSE(restored.checkpoint());
}

TEST_CASE("history store: an envelope's entry keeps what context needs and cuts long text at a character",
          "[pipeline][history]") {
    envelope::Envelope env;
    env.id = "0190a6b0-0000-7000-8000-000000000001";
    env.channel = {"whatsapp", "wa-main"};
    env.sender.id = "whatsapp:15551234567";
    env.content.type = envelope::ContentType::image;
    env.content.text = std::string(kMaxTextBytes - 1, 'a') + "é";  // é straddles the limit
    env.content.attachments.push_back({});
    env.received_at = envelope::Timestamp(std::chrono::milliseconds(1700000000000));
    env.platform = envelope::Platform{"wamid.X", std::nullopt, std::nullopt};
    auto e = entry_of(env, "c-9", "conv-9", 1699999999000);
    CHECK(e.customer == "c-9");
    CHECK(e.at_ms == 1700000000000);
    CHECK(e.conversation == "conv-9");
    CHECK(e.conversation_started_ms == 1699999999000);
    CHECK(e.channel_name == "wa-main");
    CHECK(e.content_type == "image");
    CHECK(e.attachments == 1);
    CHECK(e.author == "customer");
    CHECK(e.platform_message_id == "wamid.X");
    CHECK(e.sender == "whatsapp:15551234567");
    REQUIRE(e.text);
    CHECK(e.text->size() == kMaxTextBytes - 1);  // the two bytes of é do not fit: cut before it
}

// Every file under `dir` that holds `needle` (bytes, anywhere in the file).
static std::vector<std::string> files_holding(const std::string& dir, const std::string& needle) {
    std::vector<std::string> out;
    for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
        if (!f.is_regular_file()) continue;
        std::string bytes(static_cast<size_t>(f.file_size()), '\0');
        std::ifstream in(f.path(), std::ios::binary);
        in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        bytes.resize(static_cast<size_t>(in.gcount()));
        if (bytes.find(needle) != std::string::npos) out.push_back(f.path().filename().string());
    }
    return out;
}

TEST_CASE("history store: an erased customer's texts leave the store's files", "[pipeline][history]") {
    ScratchDir dir;
    const std::string path = dir.path() + "/h";
    {
        HistoryStore s(path);
        for (int i = 0; i < 50; ++i) {
            s.put(entry("c-ana", 1000 + i, "a" + std::to_string(i), "ANA-PRIVATE-TEXT order " + std::to_string(i)));
            s.put(entry("c-bo", 1000 + i, "b" + std::to_string(i), "BO-KEEPS-THIS " + std::to_string(i)));
        }
        s.put_state("c-ana", "ANA-PRIVATE-STATE");
        s.write_checkpoint(1);  // flushed: both customers' texts are in a table file now
        s.clear_checkpoint();
        REQUIRE_FALSE(files_holding(path, "ANA-PRIVATE-TEXT").empty());

        s.erase_customer("c-ana");
        s.compact_customer("c-ana");
        CHECK_FALSE(s.holds("c-ana"));
        CHECK(s.all("c-bo").size() == 50);
    }
    CHECK(files_holding(path, "ANA-PRIVATE-TEXT").empty());
    CHECK(files_holding(path, "ANA-PRIVATE-STATE").empty());
    // The scan finds what is there: the other customer's texts are.
    CHECK_FALSE(files_holding(path, "BO-KEEPS-THIS").empty());
    HistoryStore again(path);
    CHECK(again.all("c-bo").size() == 50);
    CHECK(again.all("c-ana").empty());
}
