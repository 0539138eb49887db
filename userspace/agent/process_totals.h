// Cumulative CPU time per process, summed from the interval samples, for the
// Prometheus exporter: Prometheus wants counters that only grow, tally's
// samples are per-interval deltas.
//
// Lifetime of an entry: created at a process's first sample, updated by each
// sample, and removed
//   - at the second scrape after its exit was seen, so a process that exited
//     is shown with its final total for one scrape interval, then drops out;
//   - after `exited_keep_intervals` intervals if nobody scrapes;
//   - by sweep() when it has not been seen for a while and is not alive
//     (an exit the backend missed).
// Pure logic, no I/O and no clock: the caller passes intervals and liveness.
// Not thread-safe: tallyd uses it from its main thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "samples/sample.h"

namespace tally::agent {

struct ProcessTotal {
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;
  std::string comm;
  std::uint64_t cpu_ns = 0;     // sum of every interval's cpu_ns since first seen
  std::uint64_t wait_ns = 0;    // and of its run-queue wait
  std::uint64_t rss_bytes = 0;  // from the latest sample
  bool exited = false;
};

struct ProcessTotalsOptions {
  std::size_t top = 500;         // at most this many processes per scrape
  std::uint64_t min_cpu_ns = 0;  // and only those with at least this much CPU
  std::uint64_t exited_keep_intervals = 10;
  std::uint64_t stale_intervals = 60;
};

class ProcessTotals {
 public:
  explicit ProcessTotals(ProcessTotalsOptions options) : options_(options) {}

  // One interval's process samples.
  void add_interval(std::span<const samples::ProcessSample> samples);

  // The processes to expose now: the `top` largest totals at or above
  // min_cpu_ns, largest first (ties by pid). Ends the visibility of exited
  // processes already shown by an earlier scrape.
  std::vector<ProcessTotal> scrape();

  // Removes entries not seen for stale_intervals for which alive(pid,
  // start_time_ns) is false. Call once per interval.
  void sweep(const std::function<bool(std::uint32_t pid, std::uint64_t start_time_ns)>& alive);

  std::size_t tracked() const { return entries_.size(); }
  std::size_t omitted_last_scrape() const { return omitted_; }

 private:
  struct Key {
    std::uint32_t pid;
    std::uint64_t start_time_ns;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    ProcessTotal total;
    std::uint64_t last_seen = 0;  // interval number
    std::uint64_t exited_at = 0;  // interval number its exit was seen
    bool shown_exited = false;    // a scrape has shown it as exited
  };

  ProcessTotalsOptions options_;
  std::map<Key, Entry> entries_;
  std::uint64_t interval_ = 0;
  std::size_t omitted_ = 0;
};

}  // namespace tally::agent
