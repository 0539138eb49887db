// A cgroup's CPU figures from its own files: usage, throttling by a CPU
// limit, pressure and the limit itself, on cgroup v2, v1 and hybrids.
//
// Where each comes from:
//   v2 (cgroup2 mount, unified tree)   cpu.stat usage_usec, nr_periods,
//                                      nr_throttled, throttled_usec (the last
//                                      three only with the cpu controller);
//                                      cpu.max; cpu.pressure
//   v1 cpu controller                  cpu.stat nr_periods, nr_throttled,
//                                      throttled_time (ns); cpu.cfs_quota_us,
//                                      cpu.cfs_period_us
//   v1 cpuacct controller              cpuacct.usage (ns)
// A hybrid host (this project's CI machines: cpu on v1, the unified tree at
// /sys/fs/cgroup/unified without controllers) takes usage and pressure from
// v2 and throttling and the limit from v1. A process's place in each
// hierarchy is its own line of /proc/PID/cgroup.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "accounting/procfs.h"

namespace tally::accounting {

// Where the hierarchies are mounted (empty: not mounted), and the path
// within each hierarchy that the mount shows as its root ("/" on a host,
// more inside a cgroup namespace's bind mount).
struct CgroupMounts {
  std::string v2;
  std::string v2_root = "/";
  std::string v1_cpu;
  std::string v1_cpu_root = "/";
  std::string v1_cpuacct;
  std::string v1_cpuacct_root = "/";
};

// From /proc/self/mountinfo's text.
CgroupMounts parse_cgroup_mounts(std::string_view mountinfo);
CgroupMounts read_cgroup_mounts();

// A process's path in each hierarchy (from /proc/PID/cgroup); empty where
// it has no line.
struct CgroupPaths {
  std::string v2;
  std::string v1_cpu;
  std::string v1_cpuacct;
  // The cgroup these figures are of: the v2 path where it is more than "/",
  // else the v1 cpu path (procfs::parse_cgroup's rule, without the
  // name=systemd hierarchy, which has no CPU files).
  std::string identity() const;
};
CgroupPaths parse_cgroup_paths(std::string_view proc_pid_cgroup);

struct CgroupCpu {
  std::optional<std::uint64_t> usage_ns;           // cumulative
  bool throttling_known = false;                   // a cpu controller answered
  std::uint64_t nr_periods = 0;                    // cumulative
  std::uint64_t nr_throttled = 0;                  // cumulative
  std::uint64_t throttled_ns = 0;                  // cumulative
  std::optional<procfs::PressureTotals> pressure;  // cumulative µs
  // The limit in CPUs (quota / period): 0.2 is 20% of one CPU; 0: none.
  double limit_cpus = 0;
};

// The figures of paths.identity(), from each hierarchy that places the
// process there; what none offers stays unset.
CgroupCpu read_cgroup_cpu(const CgroupMounts& mounts, const CgroupPaths& paths);

// Parsers, for tests: the value of `key` in a flat-keyed file such as
// cpu.stat; cpu.max ("max 100000" or "20000 100000") as CPUs, 0 for none.
std::optional<std::uint64_t> flat_keyed_value(std::string_view text, std::string_view key);
std::optional<double> parse_cpu_max(std::string_view text);

// The directory of `path` (a hierarchy path) under a mount whose root is
// `root`; "" when the path is outside what the mount shows.
std::string cgroup_dir(const std::string& mount, const std::string& root, const std::string& path);

}  // namespace tally::accounting
