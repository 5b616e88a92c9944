// Phone numbers to E.164: WhatsApp ids, numbers as people write them, and
// nothing guessed.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "phone/phone_normalizer.h"

using omnibus::phone::PhoneNormalizer;

TEST_CASE("wa_ids of valid numbers become E.164") {
    const PhoneNormalizer p;
    CHECK(p.from_wa_id("16505551234") == "+16505551234");
    CHECK(p.from_wa_id("5511987654321") == "+5511987654321");
    CHECK(p.from_wa_id("4915123456789") == "+4915123456789");
    CHECK(p.from_wa_id("919810218674") == "+919810218674");
    CHECK(p.from_wa_id("8613800138000") == "+8613800138000");
    CHECK(p.from_wa_id("34612345678") == "+34612345678");
}

TEST_CASE("invalid or malformed wa_ids are not guessed") {
    const PhoneNormalizer p("DE");
    CHECK_FALSE(p.from_wa_id("15551234567"));     // 555-1234: not a valid US number
    CHECK_FALSE(p.from_wa_id("015123456789"));    // national form: no country code
    CHECK_FALSE(p.from_wa_id("+4915123456789"));  // wa_ids have no '+'
    CHECK_FALSE(p.from_wa_id("49 151 23456789"));
    CHECK_FALSE(p.from_wa_id(""));
    CHECK_FALSE(p.from_wa_id("123"));
    CHECK_FALSE(p.from_wa_id("1234567890123456"));  // 16 digits: beyond E.164
    CHECK_FALSE(p.from_wa_id("999999999999"));      // no such country code
}

TEST_CASE("the memo gives the same answers as the first look-up, from many threads") {
    const PhoneNormalizer p;
    const std::vector<std::string> ids = {"16505551234", "15551234567", "5511987654321", "4915123456789"};
    std::vector<std::optional<std::string>> first;
    for (const auto& id : ids) first.push_back(p.from_wa_id(id));
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 2000; ++i)
                for (std::size_t k = 0; k < ids.size(); ++k)
                    if (p.from_wa_id(ids[k]) != first[k]) ++wrong;
        });
    for (auto& t : threads) t.join();
    CHECK(wrong == 0);
}

TEST_CASE("written numbers: international always, national only with a default region") {
    const PhoneNormalizer none;
    CHECK(none.from_text("+1 (650) 555-1234") == "+16505551234");
    CHECK_FALSE(none.from_text("030 12345678"));

    const PhoneNormalizer de("DE");
    CHECK(de.from_text("030 12345678") == "+493012345678");
    CHECK(de.from_text("0151 23456789") == "+4915123456789");
    CHECK(de.from_text("+55 11 98765-4321") == "+5511987654321");
    CHECK_FALSE(de.from_text("not a number"));
    CHECK_FALSE(de.from_text("12"));
    CHECK_FALSE(de.from_text(std::string(65, '1')));
}

TEST_CASE("regions are checked when the normalizer is made") {
    CHECK(PhoneNormalizer::is_supported_region("BR"));
    CHECK_FALSE(PhoneNormalizer::is_supported_region("XX"));
    CHECK_FALSE(PhoneNormalizer::is_supported_region("de"));
    CHECK_THROWS_AS(PhoneNormalizer("XX"), std::invalid_argument);
}

TEST_CASE("written numbers are memoised apart from wa_ids with the same digits") {
    const PhoneNormalizer us("US");
    for (int round = 0; round < 3; ++round) {  // the first round fills the memo, the others read it
        CHECK(us.from_text("6505551234") == "+16505551234");      // national, read in US
        CHECK(us.from_wa_id("6505551234") == std::nullopt);        // as a wa_id: country code 65, too short
        CHECK(us.from_text("+44 20 7946 0958") == "+442079460958");
        CHECK_FALSE(us.from_text("555 1234"));
        // Longer than the memo's keys: parsed every time, the same answer.
        CHECK(us.from_text("+1 (650) 555-1234 extension 7") == "+16505551234");
    }
}

TEST_CASE("half the memo's capacity of returning customers stays memoised, and a full memo still answers right") {
    const PhoneNormalizer p;
    auto number = [](int i) { return "49151" + std::to_string(10000000 + i); };
    const int n = static_cast<int>(PhoneNormalizer::kMemoSlots / 2);
    for (int i = 0; i < n; ++i) REQUIRE(p.from_wa_id(number(i)) == "+" + number(i));
    const auto first = p.parses();
    CHECK(first == static_cast<std::uint64_t>(n));
    // Round after round in the same order, as the same customers write again: a
    // direct-mapped memo missed about a third of them every round.
    for (int round = 0; round < 3; ++round)
        for (int i = 0; i < n; ++i) REQUIRE(p.from_wa_id(number(i)) == "+" + number(i));
    CHECK(p.parses() - first <= static_cast<std::uint64_t>(n / 100));  // ≤ 1 % missed per round x 3
    // Twice the capacity: evictions, and still the right answers.
    for (int i = 0; i < 2 * static_cast<int>(PhoneNormalizer::kMemoSlots); ++i)
        REQUIRE(p.from_wa_id(number(i)) == "+" + number(i));
}
