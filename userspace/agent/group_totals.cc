#include "agent/group_totals.h"

#include <algorithm>

namespace tally::agent {

void GroupTotals::add_interval(const samples::IntervalSamples& interval) {
  ++interval_;
  if (interval.host.interval_ns > 0) {
    // An hour of intervals, at least one.
    keep_intervals_ = std::max<std::uint64_t>(1, 3'600'000'000'000ULL / interval.host.interval_ns);
  }
  std::vector<samples::Sample> samples;
  samples.reserve(interval.processes.size() + 1);
  for (const auto& p : interval.processes) samples.emplace_back(p);
  samples::HostSample host = interval.host;
  host.processes = static_cast<std::uint32_t>(interval.processes.size());
  samples.emplace_back(host);
  shipping::RollupOptions o;
  o.max_groups = max_groups_;
  o.groups = &groups_;
  for (const shipping::IntervalRollup& r : shipping::roll_up(samples, o)) {
    all_cpu_ns_ += r.all.cpu_ns;
    all_wait_ns_ += r.all.wait_ns;
    for (const shipping::GroupRollup& g : r.groups) {
      GroupTotal& t = totals_[{std::string(g.by), g.name}];
      t.by = g.by;
      t.name = g.name;
      t.cpu_ns += g.total.cpu_ns;
      t.wait_ns += g.total.wait_ns;
      t.processes = g.total.processes;
      t.rss_bytes = g.total.rss_bytes;
      t.last_seen = interval_;
    }
  }
  std::erase_if(totals_,
                [&](const auto& e) { return e.second.last_seen + keep_intervals_ < interval_; });
}

}  // namespace tally::agent
