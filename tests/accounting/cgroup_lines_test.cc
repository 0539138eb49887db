// Cgroup lines from a cgroup tree the test writes itself (a v2 mount in a
// temporary directory): deltas over one interval, the first interval as a
// baseline only, counters that start again, a parent whose child was busy,
// the root left to the host line, and the end of tracking.
#include "accounting/cgroup_lines.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace tally::accounting {
namespace {

namespace fs = std::filesystem;

class CgroupLinesTest : public ::testing::Test {
 protected:
  CgroupLinesTest() {
    std::string tmpl = (fs::temp_directory_path() / "tally-cgroups-XXXXXX").string();
    root_ = mkdtemp(tmpl.data());
  }
  ~CgroupLinesTest() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  CgroupMounts mounts() const {
    CgroupMounts m;
    m.v2 = root_.string();
    return m;
  }

  // The cgroup's files as the kernel writes them with the cpu controller on.
  void write(const std::string& path, std::uint64_t usage_usec, std::uint64_t periods,
             std::uint64_t throttled, std::uint64_t throttled_usec, std::uint64_t some_usec,
             const std::string& max = "20000 100000") {
    const fs::path dir = root_.string() + path;
    fs::create_directories(dir);
    std::ofstream(dir / "cpu.stat")
        << "usage_usec " << usage_usec << "\nuser_usec 1\nsystem_usec 1\n"
        << "nr_periods " << periods << "\nnr_throttled " << throttled << "\nthrottled_usec "
        << throttled_usec << "\n";
    std::ofstream(dir / "cpu.max") << max << "\n";
    std::ofstream(dir / "cpu.pressure")
        << "some avg10=0.00 avg60=0.00 avg300=0.00 total=" << some_usec
        << "\nfull avg10=0.00 avg60=0.00 "
        << "avg300=0.00 total=" << some_usec / 2 << "\n";
  }

  static samples::ProcessSample process(std::uint64_t cpu_ns, const std::string& container = "") {
    samples::ProcessSample p;
    p.cpu_ns = cpu_ns;
    p.container_id = container;
    p.container_runtime = container.empty() ? "" : "docker";
    return p;
  }
  static CgroupPaths at(const std::string& path) {
    CgroupPaths p;
    p.v2 = path;
    return p;
  }

  fs::path root_;
};

constexpr std::uint64_t kSecond = 1'000'000'000;

TEST_F(CgroupLinesTest, TheFirstIntervalIsTheBaselineAndTheNextAreDeltas) {
  CgroupLines lines(mounts());
  write("/docker/abc", 1'000'000, 100, 10, 50'000, 7'000);
  lines.add_process(process(300'000'000, "abc"), at("/docker/abc"));
  EXPECT_TRUE(lines.end_interval(1 * kSecond, kSecond, "h").empty()) << "baseline only";
  EXPECT_EQ(lines.tracked(), 1u);

  write("/docker/abc", 1'200'000, 110, 14, 130'000, 9'000);
  lines.add_process(process(150'000'000, "abc"), at("/docker/abc"));
  lines.add_process(process(49'000'000, "abc"), at("/docker/abc"));
  const auto out = lines.end_interval(2 * kSecond, kSecond, "h");
  ASSERT_EQ(out.size(), 1u);
  const samples::CgroupSample& c = out[0];
  EXPECT_EQ(c.cgroup, "/docker/abc");
  EXPECT_EQ(c.container_id, "abc");
  EXPECT_EQ(c.container_runtime, "docker");
  EXPECT_EQ(c.host, "h");
  EXPECT_EQ(c.ts_ns, 2 * kSecond);
  EXPECT_EQ(c.processes, 2u);
  EXPECT_EQ(c.process_cpu_ns, 199'000'000u);
  ASSERT_TRUE(c.usage_known);
  EXPECT_EQ(c.cpu_ns, 200'000'000u);
  EXPECT_DOUBLE_EQ(c.cpu_pct, 20.0);
  ASSERT_TRUE(c.throttling_known);
  EXPECT_EQ(c.nr_periods, 10u);
  EXPECT_EQ(c.nr_throttled, 4u);
  EXPECT_EQ(c.throttled_ns, 80'000'000u);
  ASSERT_TRUE(c.pressure_known);
  EXPECT_EQ(c.psi_some_ns, 2'000'000u);
  EXPECT_EQ(c.psi_full_ns, 1'000'000u);
  EXPECT_DOUBLE_EQ(c.limit_cpus, 0.2);
}

TEST_F(CgroupLinesTest, ACounterBelowItsLastValueIsACgroupCreatedAgain) {
  CgroupLines lines(mounts());
  write("/svc", 5'000'000, 500, 50, 900'000, 0);
  lines.add_process(process(1), at("/svc"));
  lines.end_interval(kSecond, kSecond, "h");
  write("/svc", 40'000, 4, 1, 3'000, 0, "max 100000");
  lines.add_process(process(1), at("/svc"));
  const auto out = lines.end_interval(2 * kSecond, kSecond, "h");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].cpu_ns, 40'000'000u) << "all of the new cgroup's usage is this interval's";
  EXPECT_EQ(out[0].nr_periods, 4u);
  EXPECT_EQ(out[0].throttled_ns, 3'000'000u);
  EXPECT_DOUBLE_EQ(out[0].limit_cpus, 0) << "max: no limit";
}

TEST_F(CgroupLinesTest, AParentWhoseChildUsedTheCpuGetsALineWithoutProcesses) {
  CgroupLines lines(mounts());
  write("/system.slice", 1'000, 0, 0, 0, 0);
  lines.add_process(process(5), at("/system.slice"));
  lines.end_interval(kSecond, kSecond, "h");
  write("/system.slice", 501'000, 0, 0, 0, 0);  // its child's processes ran
  const auto out = lines.end_interval(2 * kSecond, kSecond, "h");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].processes, 0u);
  EXPECT_EQ(out[0].process_cpu_ns, 0u);
  EXPECT_EQ(out[0].cpu_ns, 500'000'000u);
  // And an interval in which nothing in it ran has no line.
  EXPECT_TRUE(lines.end_interval(3 * kSecond, kSecond, "h").empty());
}

TEST_F(CgroupLinesTest, TheRootIsTheHostsAndIdleOrRemovedCgroupsAreDropped) {
  CgroupLines lines(mounts());
  write("/a", 0, 0, 0, 0, 0);
  write("/b", 0, 0, 0, 0, 0);
  lines.add_process(process(9), at("/"));
  lines.add_process(process(9), at("/a"));
  lines.add_process(process(9), at("/b"));
  lines.add_process(process(0), at("/idle"));  // no CPU: never tracked
  lines.end_interval(kSecond, kSecond, "h");
  EXPECT_EQ(lines.tracked(), 2u);
  fs::remove_all(root_ / "b");
  lines.end_interval(2 * kSecond, kSecond, "h");
  EXPECT_EQ(lines.tracked(), 1u) << "/b's files are gone";
  for (std::uint32_t i = 0; i < CgroupLines::kIdleIntervals; ++i) {
    lines.end_interval((3 + i) * kSecond, kSecond, "h");
  }
  EXPECT_EQ(lines.tracked(), 0u) << "idle for " << CgroupLines::kIdleIntervals << " intervals";
}

TEST_F(CgroupLinesTest, PastTheBoundNewCgroupsAreCountedNotTracked) {
  CgroupLines lines(mounts());
  for (std::size_t i = 0; i < CgroupLines::kMaxTracked + 5; ++i) {
    const std::string path = "/c" + std::to_string(i);
    write(path, 1, 0, 0, 0, 0);
    lines.add_process(process(1), at(path));
  }
  lines.end_interval(kSecond, kSecond, "h");
  EXPECT_EQ(lines.tracked(), CgroupLines::kMaxTracked);
  EXPECT_EQ(lines.untracked(), 5u);
}

}  // namespace
}  // namespace tally::accounting
