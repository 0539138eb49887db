#include "accounting/procfs_backend.h"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <vector>

#include "accounting/procfs.h"
#include "tally/parse_number.h"
#include "tally/time_util.h"

namespace tally::accounting {

bool read_host_cpu_ns(std::uint64_t& busy_ns, std::uint64_t& idle_ns) {
  std::string text;
  if (!procfs::read_small_file("/proc/stat", text) || text.rfind("cpu ", 0) != 0) return false;
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (ticks)
  std::vector<std::uint64_t> v;
  std::size_t pos = 4;
  while (v.size() < 8) {
    while (pos < text.size() && text[pos] == ' ') ++pos;
    std::uint64_t x = 0;
    auto [ptr, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), x);
    if (ec != std::errc()) break;
    v.push_back(x);
    pos = static_cast<std::size_t>(ptr - text.data());
  }
  if (v.size() < 8) return false;
  const std::uint64_t tick = procfs::ns_per_tick();
  idle_ns = (v[3] + v[4]) * tick;
  busy_ns = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * tick;
  return true;
}

ProcfsBackend::ProcfsBackend() : last_poll_boottime_ns_(boottime_ns()) {
  forks_at_last_poll_ = procfs::read_forks_total().value_or(0);
  read_host_cpu_ns(prev_busy_ns_, prev_idle_ns_);
  // The first read must report only what happened after start: take every
  // live process's total as its baseline now.
  ++generation_;
  DIR* dir = opendir("/proc");
  if (!dir) return;
  while (dirent* ent = readdir(dir)) {
    std::uint32_t pid = 0;
    if (!parse_decimal(std::string_view(ent->d_name), pid)) continue;
    auto st = procfs::read_stat(pid);
    if (!st) continue;
    Seen& s = seen_[ProcessKey{pid, st->start_ticks * procfs::ns_per_tick()}];
    s.baseline_ns = (st->utime_ticks + st->stime_ticks) * procfs::ns_per_tick();
    s.generation = generation_;
    s.ppid = st->ppid;
    s.comm = st->comm;
  }
  closedir(dir);
}

Result<Snapshot> ProcfsBackend::read() {
  Snapshot snap;
  ++generation_;
  const std::uint64_t poll_boottime = boottime_ns();
  const std::uint64_t tick = procfs::ns_per_tick();
  std::uint64_t new_processes = 0;

  DIR* dir = opendir("/proc");
  if (!dir) return errno_error("open /proc");
  while (dirent* ent = readdir(dir)) {
    std::uint32_t pid = 0;
    if (!parse_decimal(std::string_view(ent->d_name), pid)) continue;
    auto st = procfs::read_stat(pid);
    if (!st) continue;  // exited between readdir and read
    const ProcessKey key{pid, st->start_ticks * tick};
    const std::uint64_t total = (st->utime_ticks + st->stime_ticks) * tick;
    auto [it, inserted] = seen_.try_emplace(key);
    Seen& s = it->second;
    if (inserted) {
      ++new_processes;
      // Born since the last poll: all its time is in this interval. Seen
      // for the first time but older: it was missed (a pid-space race), so
      // only count from now.
      s.baseline_ns = key.start_ns + tick >= last_poll_boottime_ns_ ? 0 : total;
    }
    s.total_ns = total > s.baseline_ns ? total - s.baseline_ns : 0;
    s.generation = generation_;
    s.ppid = st->ppid;
    s.comm = std::move(st->comm);
    ProcessReading r;
    r.key = key;
    r.cpu_ns = s.total_ns;
    snap.processes.push_back(std::move(r));
  }
  closedir(dir);

  // Gone since the last poll: exited. Whatever it ran after that poll is lost.
  for (auto it = seen_.begin(); it != seen_.end();) {
    if (it->second.generation == generation_) {
      ++it;
      continue;
    }
    ProcessReading r;
    r.key = it->first;
    r.cpu_ns = it->second.total_ns;
    r.exited = true;
    r.ppid = it->second.ppid;
    r.exit_comm = it->second.comm;
    snap.processes.push_back(std::move(r));
    it = seen_.erase(it);
  }

  if (auto forks = procfs::read_forks_total()) {
    const std::uint64_t delta = *forks - std::min(*forks, forks_at_last_poll_);
    if (delta > new_processes) unseen_exits_ += delta - new_processes;
    forks_at_last_poll_ = *forks;
  }
  last_poll_boottime_ns_ = poll_boottime;

  std::uint64_t busy = 0, idle = 0;
  read_host_cpu_ns(busy, idle);
  snap.host.ncpu = static_cast<std::uint32_t>(sysconf(_SC_NPROCESSORS_ONLN));
  snap.host.busy_ns = busy > prev_busy_ns_ ? busy - prev_busy_ns_ : 0;
  snap.host.idle_ns = idle > prev_idle_ns_ ? idle - prev_idle_ns_ : 0;
  snap.mono_ns = monotonic_ns();
  snap.realtime_ns = realtime_ns();
  return snap;
}

BackendInfo ProcfsBackend::info() const {
  BackendInfo info;
  info.name = "procfs";
  info.unseen_exits = unseen_exits_;
  return info;
}

}  // namespace tally::accounting
