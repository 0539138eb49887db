// The interval's cgroup lines (samples::CgroupSample): for each cgroup that
// a process line of the interval names, what the cgroup's own files say it
// did over the interval (cgroup_stats.h), as deltas.
//
// A cgroup is read again at every interval while it is tracked, so that its
// deltas cover one interval even when a child cgroup, not its own
// processes, used the CPU. Its first interval only sets the baseline: a
// cgroup's first line comes in the second interval one of its processes
// has CPU. Tracking ends after kIdleIntervals without CPU, or when its
// files are gone (the cgroup was removed). At most kMaxTracked cgroups are
// tracked; past that new ones get no line, and they are counted.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "accounting/cgroup_stats.h"
#include "samples/sample.h"

namespace tally::accounting {

class CgroupLines {
 public:
  static constexpr std::uint32_t kIdleIntervals = 10;
  static constexpr std::size_t kMaxTracked = 2048;

  explicit CgroupLines(CgroupMounts mounts) : mounts_(std::move(mounts)) {}

  // One process line of the interval and where its process is in each
  // hierarchy.
  void add_process(const samples::ProcessSample& process, const CgroupPaths& paths);

  // The lines of the processes added since the last call, by path, with the
  // interval's time, length and host.
  std::vector<samples::CgroupSample> end_interval(std::uint64_t ts_ns, std::uint64_t interval_ns,
                                                  const std::string& host);

  std::size_t tracked() const { return tracked_.size(); }
  // Cgroups that got no line because kMaxTracked were tracked already.
  std::uint64_t untracked() const { return untracked_; }

 private:
  struct Tracked {
    CgroupPaths paths;
    CgroupCpu last;
    std::uint32_t idle = 0;
    samples::CgroupSample names;  // container and pod fields, last seen
  };
  struct Seen {
    CgroupPaths paths;
    samples::CgroupSample line;  // names and process counts so far
  };

  CgroupMounts mounts_;
  std::unordered_map<std::string, Tracked> tracked_;  // by path
  std::unordered_map<std::string, Seen> seen_;        // this interval's, by path
  std::uint64_t untracked_ = 0;
};

}  // namespace tally::accounting
