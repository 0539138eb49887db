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

namespace tally::accounting {
namespace {

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

TEST(CgroupQuota, AThrottledBurnerShowsItsLimitCpuAndThrottledTime) {
  if (geteuid() != 0) GTEST_SKIP() << "not root: creating cgroups needs it";
  const CgroupMounts mounts = read_cgroup_mounts();
  const std::string name = "/tally-test-" + std::to_string(getpid());
  std::vector<std::string> dirs;
  const auto make = [&](const std::string& mount, const std::string& root) {
    if (mount.empty() || root != "/") return;
    const std::string dir = mount + name;
    if (std::find(dirs.begin(), dirs.end(), dir) != dirs.end()) return;
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
    dirs.push_back(dir);
  };
  if (!mounts.v1_cpu.empty()) {
    // v1 (this project's hybrid machines): the quota on the cpu hierarchy,
    // usage from cpuacct, and the unified tree too, as runtimes do.
    make(mounts.v1_cpu, mounts.v1_cpu_root);
    make(mounts.v1_cpuacct, mounts.v1_cpuacct_root);
    make(mounts.v2, mounts.v2_root);
    ASSERT_TRUE(write_file(mounts.v1_cpu + name + "/cpu.cfs_period_us", "100000"));
    ASSERT_TRUE(write_file(mounts.v1_cpu + name + "/cpu.cfs_quota_us", "20000"));
  } else {
    std::string controllers;
    procfs::read_small_file((mounts.v2 + "/cgroup.controllers").c_str(), controllers);
    if (mounts.v2.empty() || controllers.find("cpu") == std::string::npos) {
      GTEST_SKIP() << "no cpu controller in cgroup v1 or v2";
    }
    // v2: the controller must be on for the root's children.
    ASSERT_TRUE(write_file(mounts.v2 + "/cgroup.subtree_control", "+cpu"));
    make(mounts.v2, mounts.v2_root);
    ASSERT_TRUE(write_file(mounts.v2 + name + "/cpu.max", "20000 100000"));
  }
  if (HasFatalFailure()) return;

  test::Subprocess burner({BURNER_PATH, "spin", "5"});
  for (const auto& dir : dirs) {
    ASSERT_TRUE(write_file(dir + "/cgroup.procs", std::to_string(burner.pid()))) << dir;
  }
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
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) rmdir(it->c_str());

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

}  // namespace
}  // namespace tally::accounting
