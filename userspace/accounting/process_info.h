// Names for processes: comm, command line and cgroup, cached per incarnation.
//
// A process's command line and cgroup do not change without an exec (cgroup
// moves aside), so they are read from /proc once and again only after the
// backend reports an exec. This is what keeps the per-interval cost in
// proportion to the processes that changed, not to all processes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "accounting/backend.h"
#include "accounting/cgroup_stats.h"
#include "accounting/container_ref.h"
#include "accounting/procfs.h"

namespace tally::accounting {

struct ProcessInfo {
  std::string comm;
  std::string cmdline;  // display form: arguments separated by spaces
  std::string cgroup;
  CgroupPaths cgroup_paths;        // its place in each hierarchy, for cgroup lines
  ContainerRef container;          // what the cgroup path says
  std::uint64_t exec_mono_ns = 0;  // exec the names belong to
  bool from_proc = false;          // read from /proc (else from kernel records)
};

class ProcessInfoCache {
 public:
  // Command lines are cut to max_cmdline_bytes (procfs::cmdline_for_display).
  explicit ProcessInfoCache(std::size_t max_cmdline_bytes = procfs::kDefaultMaxCmdlineBytes)
      : max_cmdline_bytes_(max_cmdline_bytes) {}

  // Info for a process that is alive at interval end.
  const ProcessInfo& live(const ProcessReading& reading);
  // Info for a process that exited: what was cached while it lived, else what
  // the kernel recorded at its exec and exit, else its parent's command line
  // (a child that never exec'd runs its parent's program).
  ProcessInfo exited(const ProcessReading& reading);

  std::size_t size() const { return cache_.size(); }
  // Drops entries not used for `max_idle` consecutive calls to end_interval().
  void end_interval(std::uint32_t max_idle = 10);

 private:
  struct Entry {
    ProcessInfo info;
    std::uint32_t idle = 0;
  };
  Entry& load(const ProcessReading& reading);
  std::string parent_cmdline(std::uint32_t ppid);
  std::string cmdline_of(std::uint32_t pid) const;
  std::string cmdline_from(std::string_view raw) const;

  std::size_t max_cmdline_bytes_;
  std::unordered_map<ProcessKey, Entry, ProcessKeyHash> cache_;
};

}  // namespace tally::accounting
