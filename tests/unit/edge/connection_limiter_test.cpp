// Open connections per client address.
#include <catch2/catch.hpp>

#include "edge/connection_limiter.h"

using namespace omnibus::edge;

TEST_CASE("each address gets its own budget, released connection by connection") {
    ConnectionLimiter l(2);
    CHECK(l.try_acquire("10.0.0.1"));
    CHECK(l.try_acquire("10.0.0.1"));
    CHECK_FALSE(l.try_acquire("10.0.0.1"));
    CHECK(l.try_acquire("10.0.0.2"));
    CHECK(l.count("10.0.0.1") == 2);
    l.release("10.0.0.1");
    CHECK(l.try_acquire("10.0.0.1"));
    l.release("10.0.0.1");
    l.release("10.0.0.1");
    l.release("10.0.0.2");
    CHECK(l.addresses() == 0);  // no entries left behind
    l.release("10.0.0.9");      // unknown: ignored
    CHECK(l.addresses() == 0);
}

TEST_CASE("zero means no limit per address") {
    ConnectionLimiter l(0);
    for (int i = 0; i < 1000; ++i) CHECK(l.try_acquire("::1"));
    CHECK(l.count("::1") == 1000);
}
