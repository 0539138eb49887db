// How big the WAL may grow and what the cap becomes on a given filesystem.
#include "space_plan.h"

#include <gtest/gtest.h>

namespace tally::queue {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kKiB = 1ull << 10;

TEST(SpacePlan, ABigFilesystemKeepsTheCapAndSqlitesUsualWal) {
  const SpacePlan plan = plan_space(256 * kMiB, FilesystemSpace{100'000 * kMiB, 50'000 * kMiB});
  EXPECT_EQ(plan.effective_cap_bytes, 256 * kMiB);
  EXPECT_FALSE(plan.limited_by_filesystem);
  EXPECT_EQ(plan.wal_limit_bytes, 4 * kMiB);
}

TEST(SpacePlan, ASmallFilesystemGetsASmallWalAndHoldsTheOutboxWithinWhatIsLeft) {
  for (const std::uint64_t size : {2 * kMiB, 4 * kMiB, 8 * kMiB}) {
    const SpacePlan plan = plan_space(256 * kMiB, FilesystemSpace{size, size / 2});
    EXPECT_EQ(plan.wal_limit_bytes, size / 8) << size;
    EXPECT_TRUE(plan.limited_by_filesystem) << size;
    EXPECT_EQ(plan.effective_cap_bytes, size - size / 8 - kFixedOverheadBytes) << size;
    // The database, the WAL and the rest fit.
    EXPECT_LE(plan.effective_cap_bytes + plan.wal_limit_bytes + kFixedOverheadBytes, size);
  }
}

TEST(SpacePlan, FreeSpaceDoesNotMoveTheCap) {
  // Someone else filling the disk makes writes fail (and says so); it does
  // not make the outbox evict what it holds.
  EXPECT_EQ(plan_space(256 * kMiB, FilesystemSpace{4 * kMiB, 0}).effective_cap_bytes,
            plan_space(256 * kMiB, FilesystemSpace{4 * kMiB, 3 * kMiB}).effective_cap_bytes);
}

TEST(SpacePlan, AFilesystemTooSmallForAnyOutboxHoldsNothing) {
  const SpacePlan plan = plan_space(256 * kMiB, FilesystemSpace{128 * kKiB, 64 * kKiB});
  EXPECT_EQ(plan.effective_cap_bytes, 0u);
  EXPECT_TRUE(plan.limited_by_filesystem);
  EXPECT_EQ(plan.wal_limit_bytes, kMinWalBytes);
}

TEST(SpacePlan, ASmallCapGetsASmallWalAndIsKept) {
  const SpacePlan plan = plan_space(1 * kMiB, FilesystemSpace{100'000 * kMiB, 50'000 * kMiB});
  EXPECT_EQ(plan.effective_cap_bytes, 1 * kMiB);
  EXPECT_FALSE(plan.limited_by_filesystem);
  EXPECT_EQ(plan.wal_limit_bytes, 128 * kKiB);
}

TEST(SpacePlan, WithoutFilesystemFiguresTheCapIsKept) {
  const SpacePlan plan = plan_space(256 * kMiB, std::nullopt);
  EXPECT_EQ(plan.effective_cap_bytes, 256 * kMiB);
  EXPECT_FALSE(plan.limited_by_filesystem);
  EXPECT_EQ(plan.wal_limit_bytes, 4 * kMiB);
}

}  // namespace
}  // namespace tally::queue
