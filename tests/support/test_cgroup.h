// Test helper: a cgroup of the test's own, optionally with a CPU limit, in
// every hierarchy that has a say about CPU (as container runtimes place
// their processes), removed at the end. Needs root.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "accounting/cgroup_stats.h"
#include "accounting/procfs.h"

namespace tally::test {

class TestCgroup {
 public:
  // limit_cpus 0: no limit; 0.2: 20% of one CPU (20 ms per 100 ms period).
  explicit TestCgroup(double limit_cpus = 0, const std::string& suffix = "")
      : mounts_(accounting::read_cgroup_mounts()),
        name_("/tally-test-" + std::to_string(getpid()) + suffix) {
    if (geteuid() != 0) {
      skip_ = "not root: creating cgroups needs it";
      return;
    }
    const std::string quota = std::to_string(static_cast<long>(limit_cpus * 100000));
    if (!mounts_.v1_cpu.empty()) {
      // v1 (this project's hybrid machines): the quota on the cpu
      // hierarchy, usage from cpuacct, and the unified tree too.
      make(mounts_.v1_cpu, mounts_.v1_cpu_root);
      make(mounts_.v1_cpuacct, mounts_.v1_cpuacct_root);
      make(mounts_.v2, mounts_.v2_root);
      if (limit_cpus > 0) {
        write_or_fail(mounts_.v1_cpu + name_ + "/cpu.cfs_period_us", "100000");
        write_or_fail(mounts_.v1_cpu + name_ + "/cpu.cfs_quota_us", quota);
      }
      return;
    }
    std::string controllers;
    accounting::procfs::read_small_file((mounts_.v2 + "/cgroup.controllers").c_str(), controllers);
    if (mounts_.v2.empty() || controllers.find("cpu") == std::string::npos) {
      skip_ = "no cpu controller in cgroup v1 or v2";
      return;
    }
    // v2: the controller must be on for the root's children.
    write_or_fail(mounts_.v2 + "/cgroup.subtree_control", "+cpu");
    make(mounts_.v2, mounts_.v2_root);
    if (limit_cpus > 0) write_or_fail(mounts_.v2 + name_ + "/cpu.max", quota + " 100000");
  }
  ~TestCgroup() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) rmdir(it->c_str());
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  // Why it could not be made ("" when it was).
  const std::string& skip_reason() const { return skip_; }
  const std::string& name() const { return name_; }
  const accounting::CgroupMounts& mounts() const { return mounts_; }

  void add(pid_t pid) {
    for (const auto& dir : dirs_) {
      EXPECT_TRUE(write_file(dir + "/cgroup.procs", std::to_string(pid))) << dir;
    }
  }

 private:
  static bool write_file(const std::string& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    out.flush();
    return static_cast<bool>(out);
  }
  void make(const std::string& mount, const std::string& root) {
    if (mount.empty() || root != "/") return;
    const std::string dir = mount + name_;
    if (std::find(dirs_.begin(), dirs_.end(), dir) != dirs_.end()) return;
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
    dirs_.push_back(dir);
  }
  static void write_or_fail(const std::string& path, const std::string& text) {
    ASSERT_TRUE(write_file(path, text)) << path;
  }

  accounting::CgroupMounts mounts_;
  std::string name_;
  std::vector<std::string> dirs_;
  std::string skip_;
};

}  // namespace tally::test
