// tally status's judgment of the books: time shown one interval late is not
// a loss, time that never comes back is.
#include "agent/book_balance.h"

#include <gtest/gtest.h>

namespace tally::agent::book_balance_test {

constexpr std::uint64_t kBusy = 2'000'000'000;  // two CPUs, one second

std::deque<IntervalBooks> window(std::initializer_list<std::int64_t> unaccounted) {
  std::deque<IntervalBooks> d;
  for (std::int64_t u : unaccounted) d.push_back({kBusy, u});
  return d;
}

TEST(BookBalance, AnExcessInTheNewestIntervalMayStillComeBack) {
  // Seen in CI: the first interval after start showed +4 ms of 2014 ms.
  const BookBalance b = judge_books(window({4'000'000}));
  EXPECT_TRUE(b.balanced);
  EXPECT_EQ(b.unaccounted_ns, 4'000'000);
  EXPECT_EQ(b.settled_ns, 0);
}

TEST(BookBalance, TimeShownLateBalancesOnceItArrives) {
  EXPECT_TRUE(judge_books(window({0, 4'000'000, -4'000'000})).balanced);
  // The oldest interval's deficit belongs to one that left the window.
  EXPECT_TRUE(judge_books(window({-9'000'000, 0, 0})).balanced);
}

TEST(BookBalance, TimeThatNeverComesBackIsALoss) {
  const BookBalance b = judge_books(window({20'000'000, 0}));
  EXPECT_FALSE(b.balanced);
  EXPECT_EQ(b.settled_ns, 20'000'000);
  EXPECT_FALSE(judge_books(window({0, 20'000'000, 0, 0})).balanced);
}

TEST(BookBalance, TimeCountedTwiceIsAsWrongAsTimeLost) {
  EXPECT_FALSE(judge_books(window({0, -20'000'000, 0})).balanced);
  EXPECT_FALSE(judge_books(window({-4'000'000})).balanced);
}

TEST(BookBalance, SmallDifferencesAreRounding) {
  // Under a thousandth of the busy time, or under a millisecond.
  EXPECT_TRUE(judge_books(window({0, 1'900'000, 0})).balanced);
  std::deque<IntervalBooks> idle{{100'000, 0}, {100'000, 900'000}, {100'000, 0}};
  EXPECT_TRUE(judge_books(idle).balanced);
  EXPECT_TRUE(judge_books({}).balanced);
}

}  // namespace tally::agent::book_balance_test
