#include "collector/seq_ranges.h"

#include <gtest/gtest.h>

namespace tally::collector {
namespace {

using Ranges = std::vector<SeqRange>;

TEST(UncoveredRanges, NothingMissingWhenEverythingIsCovered) {
  EXPECT_EQ(uncovered_ranges(10, {{1, 10}}), Ranges{});
  EXPECT_EQ(uncovered_ranges(0, {}), Ranges{});
}

TEST(UncoveredRanges, FindsHolesAtTheStartMiddleAndEnd) {
  EXPECT_EQ(uncovered_ranges(20, {{3, 5}, {9, 9}, {10, 15}}), (Ranges{{1, 2}, {6, 8}, {16, 20}}));
}

TEST(UncoveredRanges, AcceptsUnsortedOverlappingRangesPastTheEnd) {
  EXPECT_EQ(uncovered_ranges(12, {{8, 30}, {2, 4}, {3, 6}}), (Ranges{{1, 1}, {7, 7}}));
}

TEST(UncoveredRanges, EverythingMissingWithoutRanges) {
  EXPECT_EQ(uncovered_ranges(5, {}), (Ranges{{1, 5}}));
}

TEST(UncoveredRanges, HandlesTheLargestSeq) {
  const std::uint64_t max = ~std::uint64_t{0};
  EXPECT_EQ(uncovered_ranges(max, {{1, max}}), Ranges{});
  EXPECT_EQ(uncovered_ranges(max, {{2, max}}), (Ranges{{1, 1}}));
}

}  // namespace
}  // namespace tally::collector
