#include "agent/privileges.h"

#include <linux/capability.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "accounting/procfs.h"
#include "tally/log.h"
#include "tally/parse_number.h"

namespace tally::agent {

namespace {

// Not in every libc's headers yet (Linux 5.8).
constexpr int kCapBpf = 39;

constexpr std::array<const char*, 41> kCapNames = {"CAP_CHOWN",
                                                   "CAP_DAC_OVERRIDE",
                                                   "CAP_DAC_READ_SEARCH",
                                                   "CAP_FOWNER",
                                                   "CAP_FSETID",
                                                   "CAP_KILL",
                                                   "CAP_SETGID",
                                                   "CAP_SETUID",
                                                   "CAP_SETPCAP",
                                                   "CAP_LINUX_IMMUTABLE",
                                                   "CAP_NET_BIND_SERVICE",
                                                   "CAP_NET_BROADCAST",
                                                   "CAP_NET_ADMIN",
                                                   "CAP_NET_RAW",
                                                   "CAP_IPC_LOCK",
                                                   "CAP_IPC_OWNER",
                                                   "CAP_SYS_MODULE",
                                                   "CAP_SYS_RAWIO",
                                                   "CAP_SYS_CHROOT",
                                                   "CAP_SYS_PTRACE",
                                                   "CAP_SYS_PACCT",
                                                   "CAP_SYS_ADMIN",
                                                   "CAP_SYS_BOOT",
                                                   "CAP_SYS_NICE",
                                                   "CAP_SYS_RESOURCE",
                                                   "CAP_SYS_TIME",
                                                   "CAP_SYS_TTY_CONFIG",
                                                   "CAP_MKNOD",
                                                   "CAP_LEASE",
                                                   "CAP_AUDIT_WRITE",
                                                   "CAP_AUDIT_CONTROL",
                                                   "CAP_SETFCAP",
                                                   "CAP_MAC_OVERRIDE",
                                                   "CAP_MAC_ADMIN",
                                                   "CAP_SYSLOG",
                                                   "CAP_WAKE_ALARM",
                                                   "CAP_BLOCK_SUSPEND",
                                                   "CAP_AUDIT_READ",
                                                   "CAP_PERFMON",
                                                   "CAP_BPF",
                                                   "CAP_CHECKPOINT_RESTORE"};

std::string cap_name(int cap) {
  if (cap >= 0 && static_cast<std::size_t>(cap) < kCapNames.size()) return kCapNames[cap];
  return fmt::format("cap {}", cap);
}

// The highest capability this kernel knows.
int last_cap() {
  std::string text;
  std::uint32_t v = 0;
  if (accounting::procfs::read_small_file("/proc/sys/kernel/cap_last_cap", text, 64)) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    if (parse_decimal(text, v) && v < 64) return static_cast<int>(v);
  }
  return CAP_LAST_CAP;
}

struct CapSets {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  std::array<__user_cap_data_struct, 2> data{};

  bool get() { return syscall(SYS_capget, &header, data.data()) == 0; }
  bool set() { return syscall(SYS_capset, &header, data.data()) == 0; }
  static bool has(std::uint32_t word0, std::uint32_t word1, int cap) {
    const std::uint32_t word = cap < 32 ? word0 : word1;
    return (word >> (cap % 32)) & 1u;
  }
  bool effective(int cap) const { return has(data[0].effective, data[1].effective, cap); }
  bool permitted(int cap) const { return has(data[0].permitted, data[1].permitted, cap); }
};

std::string errno_text(const char* what) {
  return fmt::format("{}: {}", what, std::strerror(errno));
}

// Capabilities the steady state uses: reading every process's /proc files
// (CAP_SYS_PTRACE for ptrace-checked files and hidepid mounts,
// CAP_DAC_READ_SEARCH for files of other users) and, for the BPF backend,
// the bpf(2) calls that read the maps.
std::vector<int> needed_caps(const PrivilegeNeeds& needs, int last) {
  std::vector<int> keep{CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE};
  if (needs.bpf_maps) keep.push_back(last >= kCapBpf ? kCapBpf : CAP_SYS_ADMIN);
  return keep;
}

bool contains(const std::vector<int>& caps, int cap) {
  for (int c : caps) {
    if (c == cap) return true;
  }
  return false;
}

void reduce_capabilities(const std::vector<int>& keep, int last, PrivilegeReport& report) {
  // Ambient capabilities would survive an execve; tallyd never runs one.
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    report.problems.push_back(errno_text("clearing ambient capabilities"));
  }
  // The bounding set first: dropping from it needs CAP_SETPCAP, which goes
  // with the effective set below. Without CAP_SETPCAP (a systemd unit that
  // already set CapabilityBoundingSet=) the bounding set stays as given:
  // that is the operator's choice, not a failure.
  CapSets before;
  const bool may_drop_bounding = before.get() && before.effective(CAP_SETPCAP);
  bool bounding_ok = may_drop_bounding;
  for (int cap = 0; may_drop_bounding && cap <= last; ++cap) {
    if (contains(keep, cap) || prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      report.problems.push_back(errno_text("reducing the capability bounding set"));
      bounding_ok = false;
      break;
    }
  }
  report.bounding_set_reduced = bounding_ok;

  CapSets caps;
  if (!caps.get()) {
    report.problems.push_back(errno_text("reading capabilities (capget)"));
    return;
  }
  CapSets next;
  for (int cap : keep) {
    if (!caps.permitted(cap)) continue;  // not ours to keep
    next.data[static_cast<std::size_t>(cap / 32)].permitted |= 1u << (cap % 32);
  }
  for (std::size_t i = 0; i < next.data.size(); ++i) {
    next.data[i].effective = next.data[i].permitted;
    next.data[i].inheritable = 0;
  }
  if (!next.set()) {
    report.problems.push_back(errno_text("dropping capabilities (capset)"));
    return;
  }
  CapSets now;
  if (now.get()) {
    for (int cap = 0; cap <= last; ++cap) {
      if (now.effective(cap)) report.kept.push_back(cap_name(cap));
    }
  }
}

struct SeccompRelease {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};

void confine_syscalls(PrivilegeReport& report) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // A sanitizer's runtime makes system calls of its own that tallyd's list
  // does not know (LeakSanitizer ptrace()s every thread at exit), and a
  // refused one hangs or kills it. Builds under a sanitizer (scripts/sanitize)
  // test tallyd's code, not this list: the normal build tests the list.
  log::info("seccomp filter not installed: built with a sanitizer");
  (void)report;
  return;
#endif
  // A system call outside the list fails with EPERM rather than killing
  // tallyd: a path this list missed becomes an error tallyd reports, not a
  // dead agent and lost samples.
  std::unique_ptr<void, SeccompRelease> ctx(seccomp_init(SCMP_ACT_ERRNO(EPERM)));
  if (!ctx) {
    report.problems.push_back("seccomp_init failed");
    return;
  }
  std::size_t allowed = 0;
  for (const char* name : steady_state_syscalls()) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    if (int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 0); rc != 0) {
      report.problems.push_back(fmt::format("seccomp: allowing {}: {}", name, std::strerror(-rc)));
      return;
    }
    ++allowed;
  }
  // Every thread gets the filter, should one already exist.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc != 0) {
    report.problems.push_back(fmt::format("seccomp: thread sync: {}", std::strerror(-rc)));
    return;
  }
  if (int rc = seccomp_load(ctx.get()); rc != 0) {
    report.problems.push_back(fmt::format("seccomp: loading the filter: {}", std::strerror(-rc)));
    return;
  }
  report.syscalls_allowed = allowed;
}

}  // namespace

const std::vector<const char*>& steady_state_syscalls() {
  // What strace saw tallyd make while sampling, shipping (plain and TLS,
  // with name resolution), answering status/top/flush, serving /metrics,
  // reloading on SIGHUP and shutting down, plus their near relatives (the
  // *at, v and 64 variants glibc may choose instead). Absent on purpose:
  // execve, ptrace, mount, module loading, process_vm_*, keyctl, and
  // everything that changes ids, privileges or the system.
  static const std::vector<const char*> list = {
      // files
      "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
      "pwritev2", "open", "openat", "openat2", "close", "close_range", "creat", "lseek", "stat",
      "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat",
      "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "fcntl", "flock", "fsync",
      "fdatasync", "sync_file_range", "ftruncate", "truncate", "fallocate", "unlink", "unlinkat",
      "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "chmod",
      "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "umask", "dup", "dup2", "dup3",
      "pipe", "pipe2", "ioctl", "fadvise64", "getcwd", "utimensat", "futimesat", "sendfile",
      // memory
      "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "membarrier", "mincore",
      // threads, time, signals
      "futex", "futex_waitv", "clone", "clone3", "set_robust_list", "get_robust_list", "rseq",
      "set_tid_address", "exit", "exit_group", "gettid", "getpid", "getppid", "tgkill", "tkill",
      "sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler", "nanosleep",
      "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "time", "rt_sigaction",
      "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigsuspend", "rt_sigpending",
      "sigaltstack", "restart_syscall", "signalfd", "signalfd4",
      // waiting
      "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
      "poll", "ppoll", "select", "pselect6", "eventfd", "eventfd2", "timerfd_create",
      "timerfd_settime", "timerfd_gettime",
      // network
      "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "getsockname",
      "getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
      "sendmmsg", "recvmmsg", "shutdown",
      // about itself and the system
      "uname", "sysinfo", "getrandom", "getuid", "geteuid", "getgid", "getegid", "getgroups",
      "getresuid", "getresgid", "capget", "prlimit64", "getrlimit", "getrusage", "times",
      "arch_prctl", "prctl", "getpriority", "ioprio_get",
      // the BPF maps, and what the unit allows for a re-attach
      "bpf", "perf_event_open"};
  return list;
}

std::string PrivilegeReport::summary() const {
  std::string kept_list;
  for (const auto& k : kept) kept_list += (kept_list.empty() ? "" : ", ") + k;
  std::string text = fmt::format(
      "capabilities {}{}; no_new_privs {}; {}", kept_list.empty() ? "none" : kept_list,
      bounding_set_reduced ? " (bounding set too)" : "", no_new_privs ? "on" : "off",
      syscalls_allowed > 0 ? fmt::format("seccomp filter of {} system calls (others fail with "
                                         "EPERM)",
                                         syscalls_allowed)
                           : std::string("no seccomp filter"));
  return text;
}

PrivilegeReport drop_privileges(const PrivilegeNeeds& needs) {
  PrivilegeReport report;
  const int last = last_cap();
  reduce_capabilities(needed_caps(needs, last), last, report);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0) {
    report.no_new_privs = true;
  } else {
    report.problems.push_back(errno_text("PR_SET_NO_NEW_PRIVS"));
  }
  // Without no_new_privs only CAP_SYS_ADMIN may load a filter; skip it.
  if (report.no_new_privs) confine_syscalls(report);
  return report;
}

}  // namespace tally::agent
