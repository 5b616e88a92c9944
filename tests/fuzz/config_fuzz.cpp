// libFuzzer target: arbitrary bytes through load_string() with a small schema
// that has every option type, a nested section, a block list and a check.
// It must never crash or let an exception out, and a substituted secret must
// never reach a diagnostic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/loader.h"
#include "config/reference.h"
#include "config/spec.h"

using namespace omnibus::config;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kEnvSecret = "fuzz-env-secret-7f3a";
constexpr std::string_view kFileSecret = "fuzz-file-secret-91c2";

const Spec& hook_spec() {
    static const Spec spec = [] {
        Spec s("hook", "a webhook channel");
        s.secret("secret").required();
        s.address("listen").def(":8080");
        s.check([](const Section& b, Reporter& r) {
            if (b.address("listen").port == 0) r.error(b.position("listen"), b.path() + ".listen needs a port");
        });
        return s;
    }();
    return spec;
}

const Spec& mail_spec() {
    static const Spec spec = [] {
        Spec s("mail", "a mailbox");
        s.strings("folders").def({"INBOX"});
        s.duration("poll").def("1m").range(1s, 1h);
        return s;
    }();
    return spec;
}

const Spec& schema() {
    static const Spec spec = [] {
        Spec kafka("kafka", "Kafka");
        kafka.boolean("embedded").def(false);
        kafka.string("brokers");
        kafka.integer("partitions").def(6).range(1, 10000);
        kafka.real("ratio").def(0.5).range(0.0, 1.0);
        kafka.size("max_message").def("1MiB").range(1, 1 << 30);
        kafka.enumeration("compression", {"none", "gzip", "lz4"}).def("lz4");
        kafka.secret("password");
        kafka.secret_map("client");
        kafka.check([](const Section& s, Reporter& r) {
            if (!s.boolean("embedded") && !s.has("brokers")) r.error(s.position("brokers"), "brokers required");
        });
        Spec root("root", "fuzz schema");
        root.string("instance").required();
        root.section(kafka);
        root.blocks("channels", BlockTypes{[](std::string_view t) -> const Spec* {
                                               if (t == "hook") return &hook_spec();
                                               if (t == "mail") return &mail_spec();
                                               return nullptr;
                                           },
                                           {"hook", "mail"}});
        return root;
    }();
    return spec;
}

const LoadOptions& options() {
    static const LoadOptions o = [] {
        LoadOptions l;
        l.getenv = [](const std::string& name) -> std::optional<std::string> {
            if (name == "SECRET") return std::string(kEnvSecret);
            if (name == "PORT") return std::string("9090");
            return std::nullopt;
        };
        // Never touch the real file system: /dev/stdin or a FIFO would block.
        l.read_file = [](const std::string& path) -> FileContent {
            if (path == "/secret") return {std::string(kFileSecret) + "\n", 0};
            return {std::nullopt, ENOENT};
        };
        return l;
    }();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const LoadResult result = load_string(text, "fuzz.yaml", schema(), options());

    if (result.ok() != result.diagnostics.empty()) std::abort();
    const std::string report = result.report();
    // The secrets may only show up if the input itself spelt them out.
    for (std::string_view secret : {kEnvSecret, kFileSecret}) {
        if (text.find(secret) == std::string_view::npos && report.find(secret) != std::string::npos) std::abort();
    }
    if (result.ok()) {
        // Exercise the getters and diff on whatever loaded.
        const Section& c = *result.config;
        (void)c.string("instance");
        (void)c.section("kafka").integer("partitions");
        for (const Section& b : c.blocks("channels")) (void)b.name();
        if (!diff(c, c).empty()) std::abort();
    }
    return 0;
}
