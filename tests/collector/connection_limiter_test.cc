#include "collector/connection_limiter.h"

#include <gtest/gtest.h>

#include <vector>

namespace tally::collector {
namespace {

using boost::asio::ip::make_address;
using Refusal = ConnectionLimiter::Refusal;

TEST(ConnectionLimiter, RefusesAClientPastItsCapButAdmitsOthers) {
  ConnectionLimiter limiter(100, 2);
  Refusal why;
  auto a1 = limiter.admit(make_address("192.0.2.1"), why);
  auto a2 = limiter.admit(make_address("192.0.2.1"), why);
  EXPECT_TRUE(a1.held() && a2.held());
  auto a3 = limiter.admit(make_address("192.0.2.1"), why);
  EXPECT_FALSE(a3.held());
  EXPECT_EQ(why, Refusal::per_client);
  auto b1 = limiter.admit(make_address("192.0.2.2"), why);
  EXPECT_TRUE(b1.held());
  EXPECT_EQ(why, Refusal::none);
  EXPECT_EQ(limiter.total(), 3u);
}

TEST(ConnectionLimiter, RefusesEveryonePastTheTotal) {
  ConnectionLimiter limiter(2, 10);
  Refusal why;
  auto a = limiter.admit(make_address("192.0.2.1"), why);
  auto b = limiter.admit(make_address("192.0.2.2"), why);
  EXPECT_FALSE(limiter.admit(make_address("192.0.2.3"), why).held());
  EXPECT_EQ(why, Refusal::total);
}

TEST(ConnectionLimiter, ASlotGivesItsPlaceBackWhenDestroyedOrMoved) {
  ConnectionLimiter limiter(1, 1);
  Refusal why;
  {
    auto a = limiter.admit(make_address("192.0.2.1"), why);
    ConnectionLimiter::Slot moved = std::move(a);
    EXPECT_FALSE(a.held());  // NOLINT(bugprone-use-after-move): the point of the test
    EXPECT_EQ(limiter.total(), 1u);
  }
  EXPECT_EQ(limiter.total(), 0u);
  EXPECT_EQ(limiter.from(make_address("192.0.2.1")), 0u);
  EXPECT_TRUE(limiter.admit(make_address("192.0.2.1"), why).held());
}

TEST(ConnectionLimiter, CountsAnIpv6ClientByItsSlash64) {
  ConnectionLimiter limiter(100, 2);
  Refusal why;
  auto a = limiter.admit(make_address("2001:db8:1:2::1"), why);
  auto b = limiter.admit(make_address("2001:db8:1:2:ffff:ffff:ffff:ffff"), why);
  EXPECT_TRUE(a.held() && b.held());
  EXPECT_FALSE(limiter.admit(make_address("2001:db8:1:2:abcd::9"), why).held());
  EXPECT_EQ(why, Refusal::per_client);
  EXPECT_TRUE(limiter.admit(make_address("2001:db8:1:3::1"), why).held()) << "another /64";
  EXPECT_EQ(ConnectionLimiter::client_of(make_address("2001:db8:1:2:abcd::9")),
            "2001:db8:1:2::/64");
}

TEST(ConnectionLimiter, CountsAnIpv4MappedAddressAsTheIpv4Address) {
  ConnectionLimiter limiter(100, 1);
  Refusal why;
  auto a = limiter.admit(make_address("192.0.2.7"), why);
  EXPECT_FALSE(limiter.admit(make_address("::ffff:192.0.2.7"), why).held());
  EXPECT_EQ(ConnectionLimiter::client_of(make_address("::ffff:192.0.2.7")), "192.0.2.7");
}

}  // namespace
}  // namespace tally::collector
