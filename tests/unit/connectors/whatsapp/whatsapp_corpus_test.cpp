// The fuzz corpus replayed through the fuzz target's own entry point, so its
// invariants run under g++ in CI.
#include <catch2/catch.hpp>

#include "connectors/whatsapp/whatsapp_codec.h"
#include "whatsapp_test_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace omnibus;
using namespace omnibus::connectors::whatsapp;
using namespace omnibus::connectors::whatsapp::testing;

TEST_CASE("the fuzz corpus replays without a broken invariant") {
    std::size_t n = 0;
    for (const auto& f : std::filesystem::directory_iterator(kSource / "tests/fuzz/corpus/whatsapp")) {
        if (!f.is_regular_file()) continue;
        INFO(f.path().filename().string());
        const std::string data = read_file(f.path());
        CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()) == 0);
        ++n;
    }
    CHECK(n >= 25);
}
