#include "shipping/backoff.h"

#include <gtest/gtest.h>

namespace tally::shipping {
namespace {

using std::chrono::milliseconds;

TEST(BackoffPolicy, StaysWithinTheDoublingCeilingForEachAttempt) {
  BackoffPolicy p{milliseconds(1000), milliseconds(300000)};
  std::mt19937_64 rng(42);
  for (std::uint32_t attempt = 0; attempt < 12; ++attempt) {
    const long long ceiling = std::min<long long>(1000LL << attempt, 300000);
    long long max_seen = 0;
    for (int i = 0; i < 2000; ++i) {
      const auto d = p.delay(attempt, rng).count();
      ASSERT_GE(d, 0);
      ASSERT_LE(d, ceiling) << "attempt " << attempt;
      max_seen = std::max<long long>(max_seen, d);
    }
    // Full jitter spreads over the whole range, not only its top.
    EXPECT_GT(max_seen, ceiling * 9 / 10) << "attempt " << attempt;
  }
}

TEST(BackoffPolicy, NeverExceedsTheCapEvenAfterManyAttempts) {
  BackoffPolicy p{milliseconds(1000), milliseconds(5000)};
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) EXPECT_LE(p.delay(200, rng).count(), 5000);
}

TEST(BackoffPolicy, RetryAfterWinsButIsBoundedByTheCap) {
  BackoffPolicy p{milliseconds(1000), milliseconds(60000)};
  std::mt19937_64 rng(1);
  EXPECT_EQ(p.delay(0, rng, milliseconds(7000)).count(), 7000);
  EXPECT_EQ(p.delay(0, rng, milliseconds(3600000)).count(), 60000);
}

TEST(ParseRetryAfter, AcceptsDelaySeconds) {
  EXPECT_EQ(parse_retry_after("120", 0), milliseconds(120000));
  EXPECT_EQ(parse_retry_after(" 0 ", 0), milliseconds(0));
}

TEST(ParseRetryAfter, AcceptsAnHttpDateRelativeToNow) {
  // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30),
            milliseconds(30000));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 30), milliseconds(0));
}

TEST(ParseRetryAfter, RejectsGarbage) {
  EXPECT_FALSE(parse_retry_after("soon", 0).has_value());
  EXPECT_FALSE(parse_retry_after("12abc", 0).has_value());
  EXPECT_FALSE(parse_retry_after("", 0).has_value());
  EXPECT_FALSE(parse_retry_after("-5", 0).has_value());
}

}  // namespace
}  // namespace tally::shipping
