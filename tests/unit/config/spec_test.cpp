// Declaring options: the fluent builder, and declaration mistakes caught as
// logic errors at start-up rather than as odd behaviour later.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "config/spec.h"

using namespace omnibus::config;
using namespace std::chrono_literals;

TEST_CASE("the builder records type, default, range, allowed values and example") {
    Spec kafka("kafka", "Kafka connection");
    kafka.integer("partitions").def(6).range(1, 10000).describe("partitions").example("12");
    kafka.duration("timeout").def(5s).range("100ms", "1m");
    kafka.size("max_message").def("1MiB");
    kafka.real("ratio").def(0.5).range(0, 1);
    kafka.strings("topics").def({"a", "b"});
    kafka.enumeration("compression", {"none", "lz4"}).def("lz4");
    kafka.address("listen").def(":8080");
    kafka.string("brokers").required();

    const Option* p = kafka.find("partitions");
    REQUIRE(p != nullptr);
    CHECK(p->type() == OptionType::integer);
    CHECK(std::get<std::int64_t>(p->default_value()) == 6);
    CHECK(std::get<std::int64_t>(p->bounds()->min) == 1);
    CHECK(p->example_text() == "12");
    CHECK(std::get<std::chrono::milliseconds>(kafka.find("timeout")->bounds()->max) == 1min);
    CHECK(std::get<std::uint64_t>(kafka.find("max_message")->default_value()) == 1u << 20);
    CHECK(std::get<double>(kafka.find("ratio")->bounds()->max) == 1.0);
    CHECK(std::get<std::vector<std::string>>(kafka.find("topics")->default_value()) ==
          std::vector<std::string>{"a", "b"});
    CHECK(std::get<Address>(kafka.find("listen")->default_value()).port == 8080);
    CHECK(kafka.find("brokers")->is_required());
    CHECK_FALSE(kafka.find("brokers")->has_default());
    CHECK(kafka.find("nope") == nullptr);
    CHECK(kafka.options().size() == 8);
    CHECK(kafka.options().front().name() == "partitions");
}

TEST_CASE("declaration mistakes throw std::logic_error") {
    Spec s("s", "");
    CHECK_THROWS_AS(s.string("x").def(3), std::logic_error);
    CHECK_THROWS_AS(s.integer("i").def(true), std::logic_error);
    CHECK_THROWS_AS(s.integer("j").range(1, 10).def(11), std::logic_error);
    CHECK_THROWS_AS(s.integer("k").def(0).range(1, 10), std::logic_error);
    CHECK_THROWS_AS(s.integer("l").range(10, 1), std::logic_error);
    CHECK_THROWS_AS(s.duration("d").def(5), std::logic_error);
    CHECK_THROWS_AS(s.duration("e").def("5"), std::logic_error);
    CHECK_THROWS_AS(s.size("z").def(-1), std::logic_error);
    CHECK_THROWS_AS(s.string("r").range(1, 2), std::logic_error);
    CHECK_THROWS_AS(s.string("q").def("a").required(), std::logic_error);
    CHECK_THROWS_AS(s.string("p").required().def("a"), std::logic_error);
    CHECK_THROWS_AS(s.enumeration("m", {"a", "b"}).def("c"), std::logic_error);
    CHECK_THROWS_AS(s.enumeration("n", {}), std::logic_error);
    CHECK_THROWS_AS(s.address("a").def("localhost"), std::logic_error);
    CHECK_THROWS_AS(s.integer("Bad-Name"), std::logic_error);
    CHECK_THROWS_AS(s.integer("x"), std::logic_error);  // declared above
    CHECK_THROWS_AS(s.blocks("b", BlockTypes{}), std::logic_error);
    CHECK_THROWS_WITH(s.integer("u").def(std::uint64_t{1} << 63), "config option 'u' (integer): beyond int64");
}

TEST_CASE("a nested section is a copy of the spec, keyed by its name") {
    Spec tls("tls", "TLS settings");
    tls.boolean("enabled").def(false);
    Spec kafka("kafka", "Kafka");
    const Option& o = kafka.section(tls);
    CHECK(o.name() == "tls");
    CHECK(o.type() == OptionType::section);
    CHECK(o.description() == "TLS settings");
    tls.boolean("later");
    CHECK(o.section_spec()->find("later") == nullptr);
    CHECK_THROWS_AS(kafka.section(tls), std::logic_error);
}
