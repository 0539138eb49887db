// One interval, start to finish: read the backend, compute deltas, name the
// processes, build the samples. Runs on the sampling thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "accounting/backend.h"
#include "accounting/cgroup_lines.h"
#include "accounting/interval_accountant.h"
#include "accounting/process_info.h"
#include "samples/sample.h"

namespace tally::accounting {

struct SamplerOptions {
  std::string host;           // reported in every sample
  bool include_idle = false;  // --all: also live processes with no CPU
  // Longer command lines are cut and marked (procfs::cmdline_for_display).
  std::size_t max_cmdline_bytes = procfs::kDefaultMaxCmdlineBytes;
  // A line per cgroup with CPU in the interval (cgroup_lines.h).
  bool cgroup_lines = true;
};

class Sampler {
 public:
  // start_mono_ns: when the backend began counting.
  Sampler(Backend& backend, SamplerOptions options, std::uint64_t start_mono_ns);

  Result<samples::IntervalSamples> sample();

  std::size_t processes_tracked() const { return accountant_.tracked(); }
  std::size_t names_cached() const { return names_.size(); }
  std::size_t cgroups_tracked() const { return cgroups_ ? cgroups_->tracked() : 0; }
  std::uint64_t cgroups_untracked() const { return cgroups_ ? cgroups_->untracked() : 0; }

 private:
  void add_idle_processes(samples::IntervalSamples& out, std::uint64_t ts_ns,
                          std::uint64_t interval_ns);
  static void set_names(samples::ProcessSample& s, const ProcessInfo& info);
  // Adds a process line to its cgroup's line (with cgroup_lines on).
  void count_in_cgroup(const samples::ProcessSample& s, const ProcessInfo& info);

  // Host counters read from /proc at each sample, for their deltas.
  struct HostCounters {
    std::optional<std::uint64_t> steal_ns;
    std::optional<procfs::PressureTotals> pressure;
  };

  Backend& backend_;
  SamplerOptions options_;
  IntervalAccountant accountant_;
  ProcessInfoCache names_;
  std::optional<HostCounters> last_host_counters_;
  std::optional<CgroupLines> cgroups_;
};

}  // namespace tally::accounting
