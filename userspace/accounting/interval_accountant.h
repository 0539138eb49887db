// Turns cumulative readings into per-interval deltas. Pure logic, no I/O.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "accounting/backend.h"

namespace tally::accounting {

struct ProcessDelta {
  const ProcessReading* reading = nullptr;  // points into the Snapshot
  std::uint64_t cpu_ns = 0;                 // CPU time used in this interval
  std::uint64_t wait_ns = 0;                // run-queue wait in this interval
};

struct IntervalDeltas {
  std::uint64_t interval_ns = 0;
  std::uint64_t end_realtime_ns = 0;
  // Processes that used CPU in the interval, and every process that exited
  // in it (once, even with no CPU since the previous interval).
  std::vector<ProcessDelta> processes;
  std::uint32_t ncpu = 0;
  std::uint64_t busy_ns = 0;
  std::uint64_t dropped = 0;     // updates the backend lost in this interval
  std::uint64_t own_run_ns = 0;  // the backend's programs' run time in it
};

class IntervalAccountant {
 public:
  // start_mono_ns: when counting began (the backend attached).
  explicit IntervalAccountant(std::uint64_t start_mono_ns) : last_mono_ns_(start_mono_ns) {}

  // Readings may lag (a slot read while being evicted): a total lower than
  // what was already reported is treated as "no new time", and the next
  // higher reading reports only the excess, so nothing is counted twice and
  // nothing is lost once the reading catches up. CPU and wait each so.
  IntervalDeltas account(const Snapshot& snap);

  std::size_t tracked() const { return reported_.size(); }

 private:
  struct Reported {
    std::uint64_t cpu_ns = 0;
    std::uint64_t wait_ns = 0;
  };
  std::unordered_map<ProcessKey, Reported, ProcessKeyHash> reported_;
  std::uint64_t last_mono_ns_;
  HostReading last_host_{};
  std::uint64_t last_dropped_ = 0;
  bool have_host_ = false;
};

}  // namespace tally::accounting
