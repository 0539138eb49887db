// A warning clients can trigger at will costs a line a minute at most.
#include "collector/throttled_warning.h"

#include <gtest/gtest.h>

namespace tally::collector {
namespace {

TEST(ThrottledWarning, LogsTheFirstAtOnceThenOneLinePerIntervalWithTheCountInBetween) {
  using std::chrono::seconds;
  ThrottledWarning w(std::chrono::minutes(1));
  const auto t0 = ThrottledWarning::Clock::time_point{} + std::chrono::hours(1);
  testing::internal::CaptureStderr();
  w.note("refused 1", t0);
  w.note("refused 2", t0 + seconds(1));
  w.note("refused 3", t0 + seconds(59));
  w.note("refused 4", t0 + seconds(60));
  w.note("refused 5", t0 + seconds(200));
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("refused 1\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("refused 2"), std::string::npos) << out;
  EXPECT_EQ(out.find("refused 3"), std::string::npos) << out;
  EXPECT_NE(out.find("refused 4 (2 more like it since the last such line)\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("refused 5\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace tally::collector
