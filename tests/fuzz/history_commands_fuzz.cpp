// libFuzzer target for what the conversation stage reads besides envelopes: the bodies of
// history.move / history.import / history.erase commands on omnibus.pipeline.customer and
// history entries restored from omnibus.changelog.history (pipeline/history).
//
// Input: the first byte picks the decoder, the rest is the body. Whatever decodes must hold:
// customer ids without '/', a move never into itself, imported entries whose key round-trips
// (encode → decode gives the same entry) so a restore reproduces what was stored, and an
// import re-encoded decodes to the same entries. The corpus in
// tests/fuzz/corpus/history_commands is replayed by "fuzz_replay: history_commands corpus".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "pipeline/history/history_commands.h"
#include "pipeline/history/history_store.h"

namespace {

using namespace omnibus::pipeline::history;

void require(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "history_commands_fuzz: invariant broken: %s\n", what);
        std::abort();
    }
}

bool plain_id(std::string_view s) { return !s.empty() && s.find('/') == std::string_view::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
        case 0:
            if (auto m = decode_move(body); m.ok()) {
                require(plain_id(m->from) && plain_id(m->into), "move ids");
                require(m->from != m->into, "move into itself");
            }
            break;
        case 1:
            if (auto e = decode_erase(body); e.ok()) require(plain_id(e->customer), "erase id");
            break;
        case 2:
            if (auto imp = decode_import(body); imp.ok()) {
                require(plain_id(imp->customer) && plain_id(imp->from), "import ids");
                for (const auto& e : imp->entries) {
                    require(e.customer == imp->customer, "entry under the importing customer");
                    const std::string key = entry_key(e.customer, e.at_ms, e.id);
                    auto back = decode_entry(key, encode(e));
                    require(back && *back == e, "entry round trip");
                }
                auto records = import_records("t", imp->from, imp->customer, imp->entries, "/fuzz");
                std::size_t n = 0;
                for (const auto& r : records) {
                    auto again = decode_import(r.value);
                    require(again.ok(), "re-encoded import decodes");
                    n += again->entries.size();
                }
                require(n == imp->entries.size(), "re-encoded import keeps every entry");
            }
            break;
        default: {
            // A changelog record: the key as far as the first newline, the value after it.
            const auto nl = body.find('\n');
            if (nl == std::string_view::npos) break;
            if (auto e = decode_entry(body.substr(0, nl), body.substr(nl + 1))) {
                auto back = decode_entry(entry_key(e->customer, e->at_ms, e->id), encode(*e));
                require(back && *back == *e, "changelog entry round trip");
            }
        }
    }
    return 0;
}
