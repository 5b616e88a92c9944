// The <prefix>instances record format and the holder map built from it: what a record must
// look like to be believed, and that anything else (broken or hostile) is ignored with a
// warning and never crashes or points a forward somewhere it should not.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "daemon/instance_record.h"
#include "log/log.h"

using namespace omnibus;
using namespace omnibus::daemon;

namespace {

// Collects the log lines written while it lives.
class CapturedLog {
public:
    CapturedLog() {
        log::set_sink([this](std::string_view line) { lines_.emplace_back(line); });
    }
    ~CapturedLog() { log::set_sink(nullptr); }
    const std::vector<std::string>& lines() const { return lines_; }
    std::size_t warnings_containing(const std::string& needle) const {
        std::size_t n = 0;
        for (const auto& l : lines_)
            if (l.find("\"level\":\"warn\"") != std::string::npos && l.find(needle) != std::string::npos) ++n;
        return n;
    }

private:
    std::vector<std::string> lines_;
};

std::string value(const std::string& instance, const std::string& url, const std::string& partitions,
                  const std::string& at = "\"2026-11-25T12:00:00.000Z\"") {
    return R"({"instance":")" + instance + R"(","admin_url":")" + url + R"(","partitions":)" + partitions +
           R"(,"at":)" + at + "}";
}

}  // namespace

TEST_CASE("an admin URL is http(s)://host:port and nothing more", "[daemon][instances]") {
    for (const char* ok : {"http://10.0.0.5:9090", "https://admin.example.com:443", "http://[::1]:9090",
                           "http://localhost:1", "http://omnibus-2.internal:65535", "http://host_name:80"}) {
        INFO(ok);
        CHECK(is_admin_url(ok));
    }
    for (const char* bad :
         {"", "http://", "ftp://h:1", "HTTP://h:80", "http://h", "http://h:", "http://h:0", "http://h:65536",
          "http://h:123456", "http://h:80/", "http://h:80/v1/status", "http://user@h:80", "http://user:pw@h:80",
          "http://h:80?x=1", "http://h:80#f", "http://[::1]", "http://[zz]:80", "http://[::1]x:80", "http://::1:80",
          "http://-h:80", "http://h-:80", "http://h..x:80", "http://.h:80", "http://h:8 0", "http://h :80",
          "http://h:80\r\nX-Evil: 1", "javascript:alert(1)", "http://:80", "http://h:+80", "http://h:-1",
          "http://h%2e:80", "//h:80", "http://h:80 "}) {
        INFO(bad);
        CHECK_FALSE(is_admin_url(bad));
    }
}

TEST_CASE("an instance record round-trips and is read back exactly", "[daemon][instances]") {
    InstanceRecord r{"web-1:4242", "http://10.0.0.5:9090", {0, 3, 5}, 1764072000000};
    auto back = decode_instance_record("web-1:4242", encode(r), 6);
    REQUIRE(back.ok());
    CHECK(back->instance == r.instance);
    CHECK(back->admin_url == r.admin_url);
    CHECK(back->partitions == r.partitions);
    CHECK(back->at_ms == r.at_ms);
    // Unknown members are fine (additive changes); partitions are kept sorted and distinct.
    auto extra = decode_instance_record(
        "a:1", R"({"instance":"a:1","admin_url":"http://a:1","partitions":[2,0,2],"at":"2026-11-25T12:00:00Z","zone":{"x":[1]}})",
        3);
    REQUIRE(extra.ok());
    CHECK(extra->partitions == std::vector<int>{0, 2});
    auto none = decode_instance_record("a:1", value("a:1", "http://a:1", "[]"), 3);
    REQUIRE(none.ok());
    CHECK(none->partitions.empty());
}

TEST_CASE("a broken or hostile instance record is refused with the reason", "[daemon][instances]") {
    const std::string deep = std::string(100, '[') + std::string(100, ']');
    const std::vector<std::pair<std::string, std::string>> cases{
        {"a:1", ""},
        {"a:1", "not json"},
        {"a:1", "{\"instance\":"},
        {"a:1", "[]"},
        {"a:1", "null"},
        {"a:1", "\"a string\""},
        {"a:1", deep},
        {"a:1", "{\"instance\":\"a:1\"} trailing"},
        {"a:1", std::string("{\"instance\":\"a\xff:1\"}")},
        {"a:1", R"({"admin_url":"http://a:1","partitions":[0],"at":"2026-11-25T12:00:00Z"})"},
        {"a:1", R"({"instance":"a:1","partitions":[0],"at":"2026-11-25T12:00:00Z"})"},
        {"a:1", R"({"instance":"a:1","admin_url":"http://a:1","at":"2026-11-25T12:00:00Z"})"},
        {"a:1", R"({"instance":"a:1","admin_url":"http://a:1","partitions":[0]})"},
        {"a:1", value("a:1", "http://a:1", "[0]", "null")},
        {"a:1", value("a:1", "http://a:1", "[0]", "12")},
        {"a:1", value("a:1", "http://a:1", "[0]", "\"yesterday\"")},
        {"a:1", value("a:1", "http://a:1", "null")},
        {"a:1", value("a:1", "http://a:1", "\"0,1\"")},
        {"a:1", value("a:1", "http://a:1", "{\"0\":1}")},
        {"a:1", value("a:1", "http://a:1", "[-1]")},
        {"a:1", value("a:1", "http://a:1", "[6]")},
        {"a:1", value("a:1", "http://a:1", "[1.5]")},
        {"a:1", value("a:1", "http://a:1", "[\"1\"]")},
        {"a:1", value("a:1", "http://a:1", "[99999999999]")},
        {"a:1", value("a:1", "http://a:1", "[[0]]")},
        {"a:1", value("b:2", "http://a:1", "[0]")},                       // another instance's record under this key
        {"a:1", value("a:1", "http://evil.example/steal?x=", "[0]")},      // not host:port
        {"a:1", value("a:1", "file:///etc/passwd", "[0]")},
        {"a:1", value("a:1", "gopher://a:70", "[0]")},
        {"a:1", value("a:1", "http://a:1/v1", "[0]")},
        {"a:1", R"({"instance":"a:1","admin_url":7,"partitions":[0],"at":"2026-11-25T12:00:00Z"})"},
        {"", value("", "http://a:1", "[0]")},                              // no key
        {"a b", value("a b", "http://a:1", "[0]")},                        // not an instance id
        {std::string(200, 'a'), value(std::string(200, 'a'), "http://a:1", "[0]")},
        {"a:1", "{\"instance\":\"a:1\",\"pad\":\"" + std::string(70 * 1024, 'x') + "\"}"},  // too large
    };
    for (const auto& [key, v] : cases) {
        INFO("key '" << key << "' value '" << v.substr(0, 200) << "'");
        auto r = decode_instance_record(key, v, 6);
        CHECK_FALSE(r.ok());
        if (!r.ok()) CHECK_FALSE(r.error().to_string().empty());
    }
}

TEST_CASE("the holder map believes the log's newest claim, forgets left instances and ignores bad records with a "
          "warning", "[daemon][instances]") {
    CapturedLog captured;
    HolderMap map;
    const std::string self = "me:1", self_url = "http://127.0.0.1:9000";
    CHECK_FALSE(map.holder(0));

    CHECK(map.read("a:1", value("a:1", "http://10.0.0.1:9090", "[0,1]"), false, 10, 4, self, self_url));
    CHECK(map.read("b:2", value("b:2", "http://10.0.0.2:9090", "[2]"), false, 11, 4, self, self_url));
    CHECK(map.holder(0) == Holder{"a:1", "http://10.0.0.1:9090"});
    CHECK(map.holder(2) == Holder{"b:2", "http://10.0.0.2:9090"});
    CHECK_FALSE(map.holder(3));

    // A rebalance: b announces partition 1 before a's revocation is on the log. The later
    // record wins; a's next record (without 1) changes nothing for 1.
    CHECK(map.read("b:2", value("b:2", "http://10.0.0.2:9090", "[1,2]"), false, 12, 4, self, self_url));
    CHECK(map.holder(1)->instance == "b:2");
    CHECK(map.holder(0)->instance == "a:1");
    CHECK(map.read("a:1", value("a:1", "http://10.0.0.1:9090", "[0]"), false, 13, 4, self, self_url));
    CHECK(map.holder(1)->instance == "b:2");

    // A tombstone: the instance left.
    CHECK(map.read("a:1", "", true, 14, 4, self, self_url));
    CHECK_FALSE(map.holder(0));
    CHECK(map.size() == 1);

    // Garbage under b's key: b's claims are forgotten (unknown beats stale), with a warning.
    CHECK(captured.warnings_containing("instance record ignored") == 0);
    CHECK_FALSE(map.read("b:2", "{\"instance\": \"b:2\", \"admin_url\": \"http://x:1/evil\"}", false, 15, 4, self, self_url));
    CHECK_FALSE(map.holder(1));
    CHECK_FALSE(map.holder(2));
    CHECK(captured.warnings_containing("instance record ignored") == 1);

    // Another instance advertising this instance's own URL would send requests back here.
    CHECK_FALSE(map.read("c:3", value("c:3", self_url, "[3]"), false, 16, 4, self, self_url));
    CHECK_FALSE(map.holder(3));
    CHECK(captured.warnings_containing("admin.advertise") == 1);
    // This instance's own record is kept (the directory leaves it out of lookups itself).
    CHECK(map.read(self, value(self, self_url, "[3]"), false, 17, 4, self, self_url));
    CHECK(map.holder(3)->instance == self);

    // Each warning is one line, whatever the record held.
    for (const auto& line : captured.lines()) {
        const auto nl = line.find('\n');
        CHECK((nl == std::string::npos || nl == line.size() - 1));
    }
}

TEST_CASE("random and mangled instance records never crash, and whatever is believed names a well-formed admin URL", "[daemon][instances]") {
    CapturedLog captured;
    HolderMap map;
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> byte(0, 255), len(0, 300);
    const std::string valid = value("a:1", "http://10.0.0.1:9090", "[0,1,2]");
    for (int i = 0; i < 5000; ++i) {
        std::string v;
        if (i % 2) {
            v = valid;  // a valid record with a few bytes changed
            for (int k = 0; k < 3; ++k) v[static_cast<std::size_t>(byte(rng)) % v.size()] = static_cast<char>(byte(rng));
        } else {
            v.resize(static_cast<std::size_t>(len(rng)));
            for (auto& c : v) c = static_cast<char>(byte(rng));
        }
        if (map.read("a:1", v, false, i, 3, "me:1", "http://me:1")) {
            auto h = map.holder(0);
            if (h) CHECK(is_admin_url(h->admin_url));
        }
    }
    SUCCEED("no crash");
}

TEST_CASE("a record left over by an instance that ended without its tombstone is stale once others took its "
          "partitions and the grace passed", "[daemon][instances]") {
    HolderMap map;
    const std::string self = "me:1", self_url = "http://127.0.0.1:9000";
    const std::string old_at = "\"2026-11-25T12:00:00.000Z\"";
    const std::int64_t at_ms = 1795608000000;  // old_at
    const std::int64_t grace = 10 * 60 * 1000;
    // dead:7 was killed holding 0 and 1; a:1 took 0 later, nobody took 1 yet.
    REQUIRE(map.read("dead:7", value("dead:7", "http://10.0.0.7:9090", "[0,1]", old_at), false, 10, 4, self, self_url));
    REQUIRE(map.read("a:1", value("a:1", "http://10.0.0.1:9090", "[0]", old_at), false, 11, 4, self, self_url));
    CHECK(map.stale(self, at_ms + grace + 1, grace).empty());  // it is still the only one naming 1
    // b:2 takes 1: every claim of dead:7 is someone else's now, but only after the grace is it stale.
    REQUIRE(map.read("b:2", value("b:2", "http://10.0.0.2:9090", "[1]", old_at), false, 12, 4, self, self_url));
    CHECK(map.stale(self, at_ms + grace, grace).empty());
    CHECK(map.stale(self, at_ms + grace + 1, grace) == std::vector<std::string>{"dead:7"});
    // Why it matters: once the takers leave cleanly, the dead one would be named the holder again.
    HolderMap copy = map;
    REQUIRE(copy.read("a:1", "", true, 13, 4, self, self_url));
    CHECK(copy.holder(0)->instance == "dead:7");
    // A claim written before the dead one's does not supersede it, and this instance is never stale.
    HolderMap order;
    REQUIRE(order.read("a:1", value("a:1", "http://10.0.0.1:9090", "[0]", old_at), false, 10, 4, self, self_url));
    REQUIRE(order.read("dead:7", value("dead:7", "http://10.0.0.7:9090", "[0]", old_at), false, 11, 4, self, self_url));
    REQUIRE(order.read(self, value(self, self_url, "[]", old_at), false, 12, 4, self, self_url));
    CHECK(order.stale(self, at_ms + 2 * grace, grace) == std::vector<std::string>{"a:1"});
    // An instance that holds nothing (it left its partitions, or died before it got any) is
    // stale after the grace: it would never be named a holder, its record is only clutter.
    REQUIRE(order.read("idle:3", value("idle:3", "http://10.0.0.3:9090", "[]", old_at), false, 13, 4, self, self_url));
    auto stale = order.stale(self, at_ms + 2 * grace, grace);
    CHECK(std::find(stale.begin(), stale.end(), "idle:3") != stale.end());
    CHECK(std::find(stale.begin(), stale.end(), self) == stale.end());
}
