#include "accounting/interval_accountant.h"

#include <gtest/gtest.h>

namespace tally::accounting {
namespace {

ProcessReading reading(std::uint32_t pid, std::uint64_t start, std::uint64_t cpu,
                       bool exited = false) {
  ProcessReading r;
  r.key = {pid, start};
  r.cpu_ns = cpu;
  r.exited = exited;
  return r;
}

Snapshot snap(std::uint64_t mono, std::vector<ProcessReading> procs, std::uint64_t busy = 0,
              std::uint64_t dropped = 0) {
  Snapshot s;
  s.mono_ns = mono;
  s.realtime_ns = mono + 1000;
  s.processes = std::move(procs);
  s.host.ncpu = 2;
  s.host.busy_ns = busy;
  s.dropped_total = dropped;
  return s;
}

TEST(IntervalAccountant, ReportsTheDifferenceBetweenCumulativeReadings) {
  IntervalAccountant acc(1000);
  auto s1 = snap(2000, {reading(10, 1, 300)});
  auto d1 = acc.account(s1);
  EXPECT_EQ(d1.interval_ns, 1000u);
  ASSERT_EQ(d1.processes.size(), 1u);
  EXPECT_EQ(d1.processes[0].cpu_ns, 300u);

  auto s2 = snap(3000, {reading(10, 1, 750)});
  auto d2 = acc.account(s2);
  ASSERT_EQ(d2.processes.size(), 1u);
  EXPECT_EQ(d2.processes[0].cpu_ns, 450u);
}

TEST(IntervalAccountant, OmitsProcessesWithNoNewTime) {
  IntervalAccountant acc(0);
  auto s1 = snap(1, {reading(10, 1, 300)});
  acc.account(s1);
  auto s2 = snap(2, {reading(10, 1, 300)});
  EXPECT_TRUE(acc.account(s2).processes.empty());
}

TEST(IntervalAccountant, NeverCountsALaggingReadingTwice) {
  IntervalAccountant acc(0);
  auto s1 = snap(1, {reading(10, 1, 500)});
  acc.account(s1);
  auto s2 = snap(2, {reading(10, 1, 420)});  // an evicted slot not yet seen in procs
  EXPECT_TRUE(acc.account(s2).processes.empty());
  auto s3 = snap(3, {reading(10, 1, 900)});
  auto d3 = acc.account(s3);
  ASSERT_EQ(d3.processes.size(), 1u);
  EXPECT_EQ(d3.processes[0].cpu_ns, 400u);  // 900 - 500, not 900 - 420
}

TEST(IntervalAccountant, ReportsAnExitOnceEvenWithoutNewTime) {
  IntervalAccountant acc(0);
  auto s1 = snap(1, {reading(10, 1, 500)});
  acc.account(s1);
  auto s2 = snap(2, {reading(10, 1, 500, true)});
  auto d2 = acc.account(s2);
  ASSERT_EQ(d2.processes.size(), 1u);
  EXPECT_TRUE(d2.processes[0].reading->exited);
  EXPECT_EQ(d2.processes[0].cpu_ns, 0u);
  EXPECT_EQ(acc.tracked(), 0u);
}

TEST(IntervalAccountant, KeepsTwoIncarnationsOfOnePidApart) {
  IntervalAccountant acc(0);
  auto s1 = snap(1, {reading(10, 1, 500, true), reading(10, 2, 70)});
  auto d1 = acc.account(s1);
  ASSERT_EQ(d1.processes.size(), 2u);
  EXPECT_EQ(d1.processes[0].cpu_ns, 500u);
  EXPECT_EQ(d1.processes[1].cpu_ns, 70u);
}

TEST(IntervalAccountant, ReportsHostBusyTimeAndDropsPerInterval) {
  IntervalAccountant acc(0);
  auto s1 = snap(10, {}, 4000, 3);
  auto d1 = acc.account(s1);
  EXPECT_EQ(d1.busy_ns, 4000u);
  EXPECT_EQ(d1.dropped, 3u);
  auto s2 = snap(20, {}, 9000, 5);
  auto d2 = acc.account(s2);
  EXPECT_EQ(d2.busy_ns, 5000u);
  EXPECT_EQ(d2.dropped, 2u);
}

}  // namespace
}  // namespace tally::accounting
