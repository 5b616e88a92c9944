// The sample envelopes in tests/data/envelope/ are exactly what the encoder
// writes, the encoder's output validates against schemas/envelope.schema.json,
// and the fuzz corpus replays cleanly.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <rapidjson/document.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "envelope/envelope.h"
#include "unit/envelope/envelope_samples.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

using namespace omnibus;
using namespace omnibus::envelope;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = OMNIBUS_SOURCE_DIR;
const fs::path kSamples = kSource / "tests/data/envelope";

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

std::vector<fs::path> files_in(const fs::path& dir, const std::string& ext = "") {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && (ext.empty() || e.path().extension() == ext)) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

rapidjson::Document dom(const std::string& text) {
    rapidjson::Document d;
    d.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

struct Run {
    int status;
    std::string output;
};

Run run(const std::string& command) {
    Run r{-1, {}};
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
    const int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

// Runs validate_schema.py on the given JSON texts, written to the build tree.
Run validate_with_schema(const std::vector<std::pair<std::string, std::string>>& named_bodies, bool strict) {
    // One directory per process: ctest runs several of these test cases at once.
    const fs::path dir = fs::path(OMNIBUS_BINARY_DIR) / "tests/envelope-schema" /
                         ((strict ? "strict-" : "open-") + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::string cmd = "python3 '" + (kSource / "tests/unit/envelope/validate_schema.py").string() + "'" +
                      (strict ? " --strict" : "") + " '" + (kSource / "schemas/envelope.schema.json").string() + "'";
    for (const auto& [name, body] : named_bodies) {
        const fs::path file = dir / (name + ".json");
        std::ofstream(file, std::ios::binary) << body;
        cmd += " '" + file.string() + "'";
    }
    Run r = run(cmd);
    fs::remove_all(dir);
    return r;
}

}  // namespace

TEST_CASE("each sample decodes and re-encodes to the same JSON") {
    const auto samples = files_in(kSamples, ".json");
    REQUIRE(samples.size() >= 7);
    for (const fs::path& p : samples) {
        INFO(p.filename().string());
        const std::string text = slurp(p);
        auto env = decode_body(text);
        INFO((env ? std::string() : env.error().to_string()));
        REQUIRE(env.ok());
        const std::string again = encode_body(*env);
        CHECK(dom(again) == dom(text));  // same keys and values: the sample is what encode writes
        auto twice = decode_body(again);
        REQUIRE(twice.ok());
        CHECK(*twice == *env);
        CHECK(decode(encode(*env, "k")).ok());
    }
}

TEST_CASE("a newer producer's sample decodes and its top-level additions survive re-encoding") {
    const std::string text = slurp(kSamples / "forward-compat/schema_v3_unknown_fields.json");
    auto env = decode_body(text);
    REQUIRE(env.ok());
    CHECK(env->content.type == ContentType::unsupported);
    const auto out = dom(encode_body(*env));
    CHECK(out["schema_version"].GetInt() == 3);
    CHECK(out["x_translation"] == dom(text)["x_translation"]);
    CHECK(out["x_priority_boost"].GetInt() == 2);
    CHECK_FALSE(out["channel"].HasMember("region"));
}

TEST_CASE("what the encoder writes validates against schemas/envelope.schema.json") {
    std::vector<std::pair<std::string, std::string>> bodies = {
        {"code_full", encode_body(testing::full_envelope())},
        {"code_minimal", encode_body(testing::minimal_envelope())},
        {"code_typical", encode_body(testing::typical_text_envelope())},
    };
    for (const fs::path& p : files_in(kSamples, ".json")) {
        auto env = decode_body(slurp(p));
        REQUIRE(env.ok());
        bodies.emplace_back(p.stem().string(), encode_body(*env));
    }
    // Strict: no key the schema does not declare.
    Run strict = validate_with_schema(bodies, true);
    INFO(strict.output);
    CHECK(strict.status == 0);

    // The published schema is open: a newer producer's additions validate.
    auto future = decode_body(slurp(kSamples / "forward-compat/schema_v3_unknown_fields.json"));
    REQUIRE(future.ok());
    Run open = validate_with_schema({{"future", encode_body(*future)}}, false);
    INFO(open.output);
    CHECK(open.status == 0);
}

TEST_CASE("the schema rejects what decode rejects (the validator really runs)") {
    Envelope no_platform = testing::minimal_envelope();
    no_platform.platform.reset();
    Envelope bad_identity = testing::minimal_envelope();
    bad_identity.sender.id = "15551234567";
    Envelope bad_conf = testing::minimal_envelope();
    bad_conf.language_confidence = 1.5;
    std::string extra = encode_body(testing::minimal_envelope());
    extra.insert(extra.find("\"channel\":{") + 11, "\"region\":\"eu\",");

    for (const auto& [name, body] : std::vector<std::pair<std::string, std::string>>{
             {"inbound_without_platform", encode_body(no_platform)},
             {"bad_identity", encode_body(bad_identity)},
             {"confidence_over_1", encode_body(bad_conf)},
         }) {
        INFO(name);
        CHECK_FALSE(decode_body(body).ok());
        const Run r = validate_with_schema({{name, body}}, false);
        INFO(r.output);
        CHECK(r.status == 1);
    }
    const Run r = validate_with_schema({{"undeclared_key", extra}}, true);
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("region") != std::string::npos);
}

TEST_CASE("the fuzz corpus replays without a broken invariant") {
    const auto corpus = files_in(kSource / "tests/fuzz/corpus/envelope");
    REQUIRE(corpus.size() >= 20);
    for (const fs::path& p : corpus) {
        INFO(p.filename().string());
        const std::string data = slurp(p);
        CHECK(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()) == 0);
    }
}
