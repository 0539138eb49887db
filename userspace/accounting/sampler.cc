#include "accounting/sampler.h"

#include <dirent.h>

#include <algorithm>
#include <unordered_set>

#include "accounting/procfs.h"
#include "tally/parse_number.h"

namespace tally::accounting {

using samples::host_percent;
using samples::HostSample;
using samples::IntervalSamples;
using samples::percent;
using samples::ProcessSample;

Sampler::Sampler(Backend& backend, SamplerOptions options, std::uint64_t start_mono_ns)
    : backend_(backend),
      options_(std::move(options)),
      accountant_(start_mono_ns),
      names_(options_.max_cmdline_bytes) {
  if (options_.cgroup_lines) cgroups_.emplace(read_cgroup_mounts());
}

Result<IntervalSamples> Sampler::sample() {
  auto snap = backend_.read();
  if (!snap.ok()) return snap.error().context("read CPU counters");
  const IntervalDeltas deltas = accountant_.account(*snap);

  IntervalSamples out;
  std::uint64_t accounted_ns = 0;
  const std::uint64_t boot_epoch_ns = procfs::boot_time_epoch_ns();
  out.processes.reserve(deltas.processes.size());
  for (const ProcessDelta& d : deltas.processes) {
    const ProcessReading& r = *d.reading;
    ProcessSample s;
    s.ts_ns = deltas.end_realtime_ns;
    s.interval_ns = deltas.interval_ns;
    s.host = options_.host;
    s.pid = r.key.tgid;
    s.start_time_ns = boot_epoch_ns + r.key.start_ns;
    s.cpu_ns = d.cpu_ns;
    s.cpu_pct = percent(d.cpu_ns, deltas.interval_ns);
    s.wait_ns = d.wait_ns;
    s.wait_pct = percent(d.wait_ns, deltas.interval_ns);
    s.exited = r.exited;
    if (r.exited) {
      const ProcessInfo info = names_.exited(r);
      set_names(s, info);
      count_in_cgroup(s, info);
    } else {
      const ProcessInfo& info = names_.live(r);
      set_names(s, info);
      count_in_cgroup(s, info);
      s.rss_bytes = procfs::read_rss_bytes(r.key.tgid).value_or(0);
    }
    accounted_ns += s.cpu_ns;
    out.processes.push_back(std::move(s));
  }
  names_.end_interval();

  if (options_.include_idle) add_idle_processes(out, deltas.end_realtime_ns, deltas.interval_ns);
  if (cgroups_) {
    out.cgroups = cgroups_->end_interval(deltas.end_realtime_ns, deltas.interval_ns, options_.host);
  }
  std::sort(out.processes.begin(), out.processes.end(),
            [](const ProcessSample& a, const ProcessSample& b) { return a.pid < b.pid; });

  HostSample& h = out.host;
  h.ts_ns = deltas.end_realtime_ns;
  h.interval_ns = deltas.interval_ns;
  h.host = options_.host;
  h.ncpu = deltas.ncpu;
  h.busy_ns = deltas.busy_ns;
  h.cpu_pct = host_percent(deltas.busy_ns, deltas.interval_ns, deltas.ncpu);
  h.processes = static_cast<std::uint32_t>(out.processes.size());
  h.dropped_updates = deltas.dropped;
  h.unaccounted_ns =
      static_cast<std::int64_t>(deltas.busy_ns) - static_cast<std::int64_t>(accounted_ns);
  h.bpf_run_ns = deltas.own_run_ns;
  const HostCounters now{procfs::read_steal_ns(), procfs::read_pressure("/proc/pressure/cpu")};
  if (last_host_counters_) {
    const HostCounters& was = *last_host_counters_;
    const auto grown = [](std::uint64_t now_v, std::uint64_t was_v) {
      return now_v > was_v ? now_v - was_v : 0;
    };
    if (now.steal_ns && was.steal_ns) h.steal_ns = grown(*now.steal_ns, *was.steal_ns);
    if (now.pressure && was.pressure) {
      h.psi_some_ns = grown(now.pressure->some_us, was.pressure->some_us) * 1000;
      h.psi_full_ns = grown(now.pressure->full_us, was.pressure->full_us) * 1000;
    }
  }
  last_host_counters_ = now;
  return out;
}

void Sampler::set_names(ProcessSample& s, const ProcessInfo& info) {
  s.comm = info.comm;
  s.cmdline = info.cmdline;
  s.cgroup = info.cgroup;
  s.container_id = info.container.id;
  s.container_runtime = info.container.runtime;
  s.pod_uid = info.container.pod_uid;
  s.pod_qos = info.container.qos;
}

void Sampler::count_in_cgroup(const ProcessSample& s, const ProcessInfo& info) {
  if (cgroups_) cgroups_->add_process(s, info.cgroup_paths);
}

void Sampler::add_idle_processes(IntervalSamples& out, std::uint64_t ts_ns,
                                 std::uint64_t interval_ns) {
  std::unordered_set<std::uint32_t> seen;
  for (const auto& p : out.processes) seen.insert(p.pid);
  DIR* dir = opendir("/proc");
  if (!dir) return;
  const std::uint64_t boot_epoch_ns = procfs::boot_time_epoch_ns();
  while (dirent* ent = readdir(dir)) {
    std::uint32_t pid = 0;
    if (!parse_decimal(std::string_view(ent->d_name), pid) || seen.count(pid)) continue;
    auto st = procfs::read_stat(pid);
    if (!st) continue;
    ProcessReading r;
    r.key = ProcessKey{pid, st->start_ticks * procfs::ns_per_tick()};
    const ProcessInfo& info = names_.live(r);
    ProcessSample s;
    s.ts_ns = ts_ns;
    s.interval_ns = interval_ns;
    s.host = options_.host;
    s.pid = pid;
    s.start_time_ns = boot_epoch_ns + r.key.start_ns;
    set_names(s, info);
    count_in_cgroup(s, info);
    s.rss_bytes = procfs::read_rss_bytes(pid).value_or(0);
    out.processes.push_back(std::move(s));
  }
  closedir(dir);
}

}  // namespace tally::accounting
