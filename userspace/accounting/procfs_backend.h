// The /proc polling backend: the fallback where BPF cannot load, and the
// baseline the benchmarks compare against (what pidusage, process-exporter
// and Telegraf procstat do).
//
// Its blind spot: a process that starts and ends between two polls is never
// seen, and the CPU a process used between its last poll and its exit is
// lost. It counts forks it never saw as processes (unseen_exits, an upper
// bound: /proc/stat counts thread creations too).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "accounting/backend.h"

namespace tally::accounting {

class ProcfsBackend final : public Backend {
 public:
  ProcfsBackend();

  Result<Snapshot> read() override;
  BackendInfo info() const override;

 private:
  struct Seen {
    std::uint64_t baseline_ns = 0;  // CPU before tracking began
    std::uint64_t total_ns = 0;     // cumulative at the last poll, since baseline
    std::uint64_t generation = 0;   // poll that last saw it
    std::uint32_t ppid = 0;
    std::string comm;
  };

  std::unordered_map<ProcessKey, Seen, ProcessKeyHash> seen_;
  std::uint64_t generation_ = 0;
  std::uint64_t last_poll_boottime_ns_;
  std::uint64_t forks_at_last_poll_ = 0;
  std::uint64_t unseen_exits_ = 0;
  std::uint64_t prev_busy_ns_ = 0;
  std::uint64_t prev_idle_ns_ = 0;
};

// Host busy/idle ns from /proc/stat's "cpu" line (all CPUs).
bool read_host_cpu_ns(std::uint64_t& busy_ns, std::uint64_t& idle_ns);

}  // namespace tally::accounting
