// The bound on batch work in flight, as pure logic.
#include "collector/ingest_budget.h"

#include <gtest/gtest.h>

namespace tally::collector {
namespace {

TEST(IngestBudget, AdmitsUpToTheRequestLimit) {
  IngestBudget budget({2, 1000});
  auto a = budget.admit(10);
  auto b = budget.admit(10);
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_FALSE(budget.admit(10));
  EXPECT_EQ(budget.usage().requests, 2u);
}

TEST(IngestBudget, AdmitsUpToTheByteLimit) {
  IngestBudget budget({10, 100});
  auto a = budget.admit(60);
  EXPECT_TRUE(a);
  EXPECT_FALSE(budget.admit(41));
  auto b = budget.admit(40);
  EXPECT_TRUE(b);
  EXPECT_EQ(budget.usage().bytes, 100u);
}

TEST(IngestBudget, ALoneRequestIsAdmittedWhateverItsSize) {
  IngestBudget budget({10, 100});
  auto big = budget.admit(1000);
  EXPECT_TRUE(big);
  EXPECT_TRUE(big.resize(5000)) << "alone, it may grow too";
  EXPECT_FALSE(budget.admit(1));
}

TEST(IngestBudget, ATicketGivesItsPlaceBackWhenDestroyed) {
  IngestBudget budget({1, 100});
  {
    auto a = budget.admit(100);
    EXPECT_FALSE(budget.admit(1));
    IngestBudget::Ticket moved = std::move(a);
    EXPECT_FALSE(budget.admit(1)) << "moving keeps the place";
  }
  EXPECT_EQ(budget.usage().requests, 0u);
  EXPECT_EQ(budget.usage().bytes, 0u);
  EXPECT_TRUE(budget.admit(100));
}

TEST(IngestBudget, GrowingNeedsRoomShrinkingAlwaysWorks) {
  IngestBudget budget({10, 100});
  auto a = budget.admit(50);
  auto b = budget.admit(30);
  EXPECT_FALSE(a.resize(80)) << "50 + 30 held; 80 + 30 is over";
  EXPECT_EQ(a.bytes(), 50u);
  EXPECT_TRUE(a.resize(70));
  EXPECT_TRUE(a.resize(1));
  EXPECT_EQ(budget.usage().bytes, 31u);
}

TEST(IngestBudget, ATicketMayOutliveItsBudget) {
  IngestBudget::Ticket kept;
  {
    IngestBudget budget({1, 100});
    kept = budget.admit(10);
  }
  EXPECT_TRUE(kept.resize(5));
}

}  // namespace
}  // namespace tally::collector
