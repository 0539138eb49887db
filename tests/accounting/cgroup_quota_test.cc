// A real cgroup with a 20% CPU limit and a burner in it: the figures tally
// reads for it (accounting/cgroup_stats.h) show the limit, CPU near 20% and
// throttled time. Needs root and a cpu controller: v1 cpu.cfs_quota_us, or
// v2 cpu.max where the unified tree has the controller.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "accounting/cgroup_stats.h"
#include "accounting/procfs.h"
#include "subprocess.h"
#include "tallyd_run.h"
#include "test_cgroup.h"

namespace tally::accounting {
namespace {

TEST(CgroupQuota, AThrottledBurnerShowsItsLimitCpuAndThrottledTime) {
  test::TestCgroup cgroup(0.2);
  if (!cgroup.skip_reason().empty()) GTEST_SKIP() << cgroup.skip_reason();
  if (HasFatalFailure()) return;
  const std::string& name = cgroup.name();
  const CgroupMounts& mounts = cgroup.mounts();

  test::Subprocess burner({BURNER_PATH, "spin", "5"});
  cgroup.add(burner.pid());
  std::string text;
  ASSERT_TRUE(
      procfs::read_small_file(("/proc/" + std::to_string(burner.pid()) + "/cgroup").c_str(), text));
  const CgroupPaths paths = parse_cgroup_paths(text);
  EXPECT_EQ(paths.identity(), name) << text;
  EXPECT_EQ(procfs::parse_cgroup(text), name) << "the cgroup process samples name";

  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const CgroupCpu before = read_cgroup_cpu(mounts, paths);
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const CgroupCpu after = read_cgroup_cpu(mounts, paths);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  burner.signal(SIGKILL);
  burner.wait(std::chrono::seconds(10));

  EXPECT_DOUBLE_EQ(after.limit_cpus, 0.2);
  ASSERT_TRUE(after.throttling_known);
  ASSERT_TRUE(before.usage_ns && after.usage_ns);
  const double cpu = static_cast<double>(*after.usage_ns - *before.usage_ns) / 1e9 / seconds;
  const double throttled_ms = static_cast<double>(after.throttled_ns - before.throttled_ns) / 1e6;
  std::printf("20%% quota: CPU %.1f%% of one CPU, throttled %llu of %llu periods, %.0f ms\n",
              cpu * 100, static_cast<unsigned long long>(after.nr_throttled - before.nr_throttled),
              static_cast<unsigned long long>(after.nr_periods - before.nr_periods), throttled_ms);
  EXPECT_NEAR(cpu, 0.2, 0.03);
  EXPECT_GT(after.nr_throttled - before.nr_throttled, 10u);
  EXPECT_GT(throttled_ms, 500);
}

// The same cgroup seen by tallyd: its burner's process lines name it, and
// its cgroup lines carry the limit, the throttling and CPU near 20%, which
// agree with the BPF count of its one process.
TEST(CgroupQuota, TallydWritesACgroupLinePerIntervalWithLimitThrottlingAndCpu) {
  TALLY_REQUIRE_BPF();
  test::TestCgroup cgroup(0.2);
  if (!cgroup.skip_reason().empty()) GTEST_SKIP() << cgroup.skip_reason();
  if (HasFatalFailure()) return;

  test::Subprocess burner({BURNER_PATH, "spin", "30"});
  cgroup.add(burner.pid());
  test::TallydRun tallyd({"--interval", "1"});
  ASSERT_TRUE(tallyd.wait_ready()) << tallyd.process().stderr_text();
  std::this_thread::sleep_for(std::chrono::seconds(6));
  burner.signal(SIGKILL);
  burner.wait(std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_EQ(tallyd.stop(), 0) << tallyd.process().stderr_text();

  for (const auto& p : tallyd.process_samples(static_cast<std::uint32_t>(burner.pid()))) {
    EXPECT_EQ(p.value("cgroup", ""), cgroup.name()) << p;
  }
  std::vector<nlohmann::json> lines;
  for (auto& c : tallyd.samples("cgroup")) {
    if (c.value("cgroup", "") == cgroup.name()) lines.push_back(std::move(c));
  }
  // The first interval is the baseline; then one a second while it burns.
  ASSERT_GE(lines.size(), 4u) << tallyd.process().stderr_text();
  // The last line is the interval in which the burner was killed.
  std::uint64_t cpu = 0, process_cpu = 0, burning_cpu = 0, burning_interval = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& c = lines[i];
    std::printf("cgroup line: cpu %.1f%%, throttled %llu of %llu periods, %.0f ms\n",
                c.value("cpu_pct", -1.0), c.value("nr_throttled", 0ull),
                c.value("nr_periods", 0ull), c.value("throttled_ns", 0ull) / 1e6);
    EXPECT_EQ(c.value("processes", 0u), 1u) << c;
    EXPECT_DOUBLE_EQ(c.value("limit_cpus", -1.0), 0.2) << c;
    cpu += c.value("cpu_ns", 0ull);
    process_cpu += c.value("process_cpu_ns", 0ull);
    // The kill may come early in the last interval, before the burner used
    // its quota: throttling is checked in the intervals it burned through.
    if (i + 1 < lines.size()) {
      EXPECT_GT(c.value("nr_throttled", 0ull), 0u) << c;
      EXPECT_GT(c.value("throttled_ns", 0ull), 0u) << c;
      burning_cpu += c.value("cpu_ns", 0ull);
      burning_interval += c.value("interval_ns", 0ull);
    }
  }
  // While it burned: the cgroup's own usage against the interval time.
  EXPECT_NEAR(static_cast<double>(burning_cpu) / static_cast<double>(burning_interval), 0.2, 0.03);
  // Over all lines, against tally's count of its process: each line's two
  // readings are milliseconds apart, and over the run they agree closely.
  std::printf("over %zu lines: cgroup usage %.3f ms, its process by BPF %.3f ms\n", lines.size(),
              cpu / 1e6, process_cpu / 1e6);
  EXPECT_NEAR(static_cast<double>(process_cpu), static_cast<double>(cpu), 0.03 * cpu)
      << "BPF count of the burner vs the cgroup's usage";
}

}  // namespace
}  // namespace tally::accounting
