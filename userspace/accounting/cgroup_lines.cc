#include "accounting/cgroup_lines.h"

#include <algorithm>

namespace tally::accounting {

namespace {

// Growth of a cumulative counter. A counter below its last value belongs to
// a cgroup removed and created again under the same path, counting from 0
// since: all of it is this interval's.
std::uint64_t grown(std::uint64_t now, std::uint64_t was) { return now >= was ? now - was : now; }

bool has_figures(const CgroupCpu& c) { return c.usage_ns || c.throttling_known || c.pressure; }

}  // namespace

void CgroupLines::add_process(const samples::ProcessSample& p, const CgroupPaths& paths) {
  std::string path = paths.identity();
  // The root cgroup's figures are the host's, which the host line has.
  if (path.empty() || path == "/") return;
  auto [it, added] = seen_.try_emplace(std::move(path));
  samples::CgroupSample& line = it->second.line;
  if (added) {
    it->second.paths = paths;
    line.cgroup = it->first;
    samples::copy_container_fields(p, line);
  }
  ++line.processes;
  line.process_cpu_ns += p.cpu_ns;
}

std::vector<samples::CgroupSample> CgroupLines::end_interval(std::uint64_t ts_ns,
                                                             std::uint64_t interval_ns,
                                                             const std::string& host) {
  std::vector<samples::CgroupSample> out;
  for (auto& [path, seen] : seen_) {
    if (seen.line.process_cpu_ns == 0) continue;
    if (tracked_.count(path)) continue;
    if (tracked_.size() >= kMaxTracked) {
      ++untracked_;
      continue;
    }
    // New: this interval's reading is its baseline (below).
    tracked_.emplace(path, Tracked{seen.paths, {}, 0, seen.line});
  }
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    const std::string& path = it->first;
    Tracked& t = it->second;
    const CgroupCpu now = read_cgroup_cpu(mounts_, t.paths);
    const bool baseline_only = !has_figures(t.last);
    const auto seen = seen_.find(path);
    const bool busy = seen != seen_.end() && seen->second.line.process_cpu_ns > 0;
    if (seen != seen_.end()) t.names = seen->second.line;
    samples::CgroupSample line = t.names;
    if (seen == seen_.end()) {
      line.processes = 0;
      line.process_cpu_ns = 0;
    }
    if (!baseline_only) {
      if (now.usage_ns && t.last.usage_ns) {
        line.usage_known = true;
        line.cpu_ns = grown(*now.usage_ns, *t.last.usage_ns);
      }
      if (now.throttling_known && t.last.throttling_known) {
        line.throttling_known = true;
        line.nr_periods = grown(now.nr_periods, t.last.nr_periods);
        line.nr_throttled = grown(now.nr_throttled, t.last.nr_throttled);
        line.throttled_ns = grown(now.throttled_ns, t.last.throttled_ns);
      }
      if (now.pressure && t.last.pressure) {
        line.pressure_known = true;
        line.psi_some_ns = grown(now.pressure->some_us, t.last.pressure->some_us) * 1000;
        line.psi_full_ns = grown(now.pressure->full_us, t.last.pressure->full_us) * 1000;
      }
    }
    // A child cgroup's processes count in this one's usage: a line whenever
    // its own usage grew, even with none of its own processes busy.
    const bool used = busy || (line.usage_known && line.cpu_ns > 0);
    if (!baseline_only && used && has_figures(now)) {
      line.ts_ns = ts_ns;
      line.interval_ns = interval_ns;
      line.host = host;
      line.cgroup = path;
      line.cpu_pct = samples::percent(line.cpu_ns, interval_ns);
      line.limit_cpus = samples::cpus_of_millionths(samples::cpu_millionths(now.limit_cpus));
      out.push_back(std::move(line));
    }
    t.idle = busy ? 0 : t.idle + 1;
    if (!has_figures(now) || t.idle > kIdleIntervals) {
      it = tracked_.erase(it);
      continue;
    }
    t.last = now;
    ++it;
  }
  seen_.clear();
  std::sort(out.begin(), out.end(),
            [](const samples::CgroupSample& a, const samples::CgroupSample& b) {
              return a.cgroup < b.cgroup;
            });
  return out;
}

}  // namespace tally::accounting
