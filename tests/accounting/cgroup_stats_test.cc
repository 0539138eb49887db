// Reading cgroup files: mounts, a process's paths, cpu.stat and cpu.max, as
// the kernel writes them on v1, v2 and hybrid hosts.
#include "accounting/cgroup_stats.h"

#include <gtest/gtest.h>

namespace tally::accounting {
namespace {

TEST(CgroupMounts, FindsEachHierarchyAndItsRoot) {
  // A hybrid host (this machine's layout), plus a namespaced v2 mount.
  const auto m = parse_cgroup_mounts(
      "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
      "33 30 0:30 / /sys/fs/cgroup/cpu\\040set rw,relatime - cgroup cgroup rw,cpuset\n"
      "40 30 0:35 /kubepods /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n");
  EXPECT_EQ(m.v1_cpu, "/sys/fs/cgroup/cpu");
  EXPECT_EQ(m.v1_cpuacct, "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(m.v2, "/sys/fs/cgroup/unified");
  EXPECT_EQ(m.v2_root, "/kubepods");
  // co-mounted cpu,cpuacct
  const auto co = parse_cgroup_mounts(
      "25 22 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  EXPECT_EQ(co.v1_cpu, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(co.v1_cpuacct, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_TRUE(co.v2.empty());
}

TEST(CgroupPaths, TakesEachHierarchysLineAndNamesTheCgroupReported) {
  const auto hybrid = parse_cgroup_paths(
      "9:name=systemd:/system.slice/x.service\n"
      "3:cpuacct:/tally\n2:cpu:/tally\n0::/\n");
  EXPECT_EQ(hybrid.v1_cpu, "/tally");
  EXPECT_EQ(hybrid.v1_cpuacct, "/tally");
  EXPECT_EQ(hybrid.identity(), "/tally");  // v2 says only "/"
  const auto v2 = parse_cgroup_paths("0::/system.slice/nginx.service\n");
  EXPECT_EQ(v2.identity(), "/system.slice/nginx.service");
  EXPECT_EQ(parse_cgroup_paths("4:cpu,cpuacct:/docker/abc\n").v1_cpuacct, "/docker/abc");
}

TEST(CgroupDir, KeepsPathsInsideWhatTheMountShows) {
  EXPECT_EQ(cgroup_dir("/sys/fs/cgroup", "/", "/a/b"), "/sys/fs/cgroup/a/b");
  EXPECT_EQ(cgroup_dir("/sys/fs/cgroup", "/", "/"), "/sys/fs/cgroup");
  EXPECT_EQ(cgroup_dir("/sys/fs/cgroup", "/kubepods", "/kubepods/pod1"), "/sys/fs/cgroup/pod1");
  EXPECT_EQ(cgroup_dir("/sys/fs/cgroup", "/kubepods", "/system.slice"), "");
  EXPECT_EQ(cgroup_dir("/sys/fs/cgroup", "/", "/../../etc"),
            "");  // a path from outside a namespace
  EXPECT_EQ(cgroup_dir("", "/", "/a"), "");
}

TEST(CgroupFiles, ReadCpuStatAndCpuMax) {
  const std::string v2_stat =
      "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\nnr_periods 50\n"
      "nr_throttled 7\nthrottled_usec 81234\nnr_bursts 0\nburst_usec 0\n";
  EXPECT_EQ(flat_keyed_value(v2_stat, "usage_usec"), 123456u);
  EXPECT_EQ(flat_keyed_value(v2_stat, "nr_throttled"), 7u);
  EXPECT_EQ(flat_keyed_value(v2_stat, "throttled"), std::nullopt);  // a prefix is not a key
  EXPECT_EQ(flat_keyed_value("nr_periods x\n", "nr_periods"), std::nullopt);
  const std::string v1_stat = "nr_periods 12\nnr_throttled 3\nthrottled_time 9000000\n";
  EXPECT_EQ(flat_keyed_value(v1_stat, "throttled_time"), 9000000u);

  EXPECT_EQ(parse_cpu_max("max 100000\n"), 0.0);
  EXPECT_EQ(parse_cpu_max("20000 100000\n"), 0.2);
  EXPECT_EQ(parse_cpu_max("150000 100000"), 1.5);
  EXPECT_EQ(parse_cpu_max("20000 0"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("20000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("-1 100000"), std::nullopt);
}

}  // namespace
}  // namespace tally::accounting
