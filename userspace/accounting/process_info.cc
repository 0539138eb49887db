#include "accounting/process_info.h"

#include "accounting/procfs.h"

namespace tally::accounting {

ProcessInfoCache::Entry& ProcessInfoCache::load(const ProcessReading& r) {
  auto [it, inserted] = cache_.try_emplace(r.key);
  Entry& e = it->second;
  e.idle = 0;
  const bool new_exec = r.exec && r.exec->exec_mono_ns != e.info.exec_mono_ns;
  if (!inserted && !new_exec && e.info.from_proc) return e;

  if (r.exec) e.info.exec_mono_ns = r.exec->exec_mono_ns;
  // /proc/PID may already belong to a newer process with the same pid; only
  // trust it for the incarnation we are naming.
  if (procfs::is_same_incarnation(r.key.tgid, r.key.start_ns)) {
    e.info.comm = procfs::read_comm(r.key.tgid);
    e.info.cmdline = cmdline_of(r.key.tgid);
    const std::string cgroups = procfs::read_cgroup_text(r.key.tgid);
    e.info.cgroup = procfs::parse_cgroup(cgroups);
    e.info.cgroup_paths = parse_cgroup_paths(cgroups);
    e.info.container = container_from_cgroup(e.info.cgroup);
    e.info.from_proc = true;
  } else if (r.exec) {
    e.info.comm = r.exec->comm;
    e.info.cmdline = cmdline_from(r.exec->args);
    e.info.from_proc = false;
  }
  return e;
}

std::string ProcessInfoCache::cmdline_of(std::uint32_t pid) const {
  return procfs::cmdline_for_display(procfs::read_cmdline(pid, max_cmdline_bytes_),
                                     max_cmdline_bytes_);
}

std::string ProcessInfoCache::cmdline_from(std::string_view raw) const {
  return procfs::cmdline_for_display(raw, max_cmdline_bytes_);
}

const ProcessInfo& ProcessInfoCache::live(const ProcessReading& r) { return load(r).info; }

std::string ProcessInfoCache::parent_cmdline(std::uint32_t ppid) {
  if (ppid == 0) return {};
  for (const auto& [key, e] : cache_) {
    if (key.tgid == ppid && e.info.from_proc) return e.info.cmdline;
  }
  return cmdline_of(ppid);
}

ProcessInfo ProcessInfoCache::exited(const ProcessReading& r) {
  ProcessInfo info;
  auto it = cache_.find(r.key);
  const bool exec_after_cache =
      r.exec && (it == cache_.end() || r.exec->exec_mono_ns > it->second.info.exec_mono_ns);
  if (it != cache_.end() && !exec_after_cache) {
    info = it->second.info;
  } else if (r.exec) {
    info.comm = r.exec->comm;
    info.cmdline = cmdline_from(r.exec->args);
    if (it != cache_.end()) {
      info.cgroup = it->second.info.cgroup;
      info.cgroup_paths = it->second.info.cgroup_paths;
      info.container = it->second.info.container;
    }
  } else {
    info.cmdline = parent_cmdline(r.ppid);
  }
  // The kernel's comm at exit is the final word (prctl(PR_SET_NAME) included).
  if (!r.exit_comm.empty()) info.comm = r.exit_comm;
  if (it != cache_.end()) cache_.erase(it);
  return info;
}

void ProcessInfoCache::end_interval(std::uint32_t max_idle) {
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (++it->second.idle > max_idle) {
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace tally::accounting
