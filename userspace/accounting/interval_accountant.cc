#include "accounting/interval_accountant.h"

#include <algorithm>

namespace tally::accounting {

IntervalDeltas IntervalAccountant::account(const Snapshot& snap) {
  IntervalDeltas out;
  out.interval_ns = snap.mono_ns > last_mono_ns_ ? snap.mono_ns - last_mono_ns_ : 0;
  out.end_realtime_ns = snap.realtime_ns;
  last_mono_ns_ = snap.mono_ns;

  for (const ProcessReading& r : snap.processes) {
    auto [it, inserted] = reported_.try_emplace(r.key);
    Reported& seen = it->second;
    std::uint64_t delta = 0, wait = 0;
    if (r.cpu_ns > seen.cpu_ns) {
      delta = r.cpu_ns - seen.cpu_ns;
      seen.cpu_ns = r.cpu_ns;
    }
    if (r.wait_ns > seen.wait_ns) {
      wait = r.wait_ns - seen.wait_ns;
      seen.wait_ns = r.wait_ns;
    }
    if (r.exited) {
      out.processes.push_back({&r, delta, wait});
      reported_.erase(it);
    } else if (delta > 0 || wait > 0) {
      out.processes.push_back({&r, delta, wait});
    } else if (inserted) {
      reported_.erase(it);  // nothing to remember about a process with no time yet
    }
  }

  out.ncpu = snap.host.ncpu;
  // The first reading's totals count from attach time, as the backend does.
  const std::uint64_t prev_busy = have_host_ ? last_host_.busy_ns : 0;
  out.busy_ns = snap.host.busy_ns > prev_busy ? snap.host.busy_ns - prev_busy : 0;
  // Stats switched on after start count from then; switched off, nothing.
  out.own_run_ns = have_host_ && snap.host.own_run_ns > last_host_.own_run_ns
                       ? snap.host.own_run_ns - last_host_.own_run_ns
                       : 0;
  if (!have_host_ || snap.host.busy_ns >= last_host_.busy_ns) last_host_ = snap.host;
  have_host_ = true;
  out.dropped = snap.dropped_total > last_dropped_ ? snap.dropped_total - last_dropped_ : 0;
  last_dropped_ = std::max(last_dropped_, snap.dropped_total);
  return out;
}

}  // namespace tally::accounting
