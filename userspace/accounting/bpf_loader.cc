#include "accounting/bpf_loader.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "cpu_account.skel.h"
#include "tally/log.h"
#include "tally/time_util.h"

namespace tally::accounting {

void SkeletonDeleter::operator()(cpu_account* skel) const { cpu_account__destroy(skel); }

namespace {

constexpr const char* kVmlinuxBtf = "/sys/kernel/btf/vmlinux";

// libbpf reports load failures (verifier output included) through its print
// callback. We keep the tail of it so the error we return says why.
std::mutex g_libbpf_log_mutex;
std::string g_libbpf_log;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, format, args);
  std::lock_guard lock(g_libbpf_log_mutex);
  g_libbpf_log.append(
      buf, n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1) : 0);
  if (g_libbpf_log.size() > 16384) g_libbpf_log.erase(0, g_libbpf_log.size() - 8192);
  return 0;
}

std::string take_libbpf_log() {
  std::lock_guard lock(g_libbpf_log_mutex);
  std::string out;
  out.swap(g_libbpf_log);
  // The last few lines carry the reason; the full verifier log is noise here.
  std::size_t pos = out.size();
  for (int lines = 0; lines < 4 && pos > 0; ++lines) {
    pos = out.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  std::string tail = out.substr(pos);
  for (char& c : tail) {
    if (c == '\n') c = ' ';
  }
  return tail;
}

bool has_capability(int cap) {
  __user_cap_header_struct header{};
  __user_cap_data_struct data[2]{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

Status check_bpf_prerequisites() {
  std::error_code ec;
  if (!std::filesystem::exists(kVmlinuxBtf, ec)) {
    return Error::format(
        "kernel BTF not found at {} (needs a kernel built with CONFIG_DEBUG_INFO_BTF=y; "
        "in a container, mount the host's /sys/kernel/btf)",
        kVmlinuxBtf);
  }
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
  const bool admin = has_capability(CAP_SYS_ADMIN);
  const bool bpf = has_capability(CAP_BPF);
  const bool perfmon = has_capability(CAP_PERFMON);
  if (!admin && !(bpf && perfmon)) {
    return Error::format(
        "missing privilege to load BPF programs: need CAP_BPF and CAP_PERFMON (have {} and {}) "
        "or CAP_SYS_ADMIN; run as root or grant them (systemd: AmbientCapabilities=)",
        bpf ? "CAP_BPF" : "no CAP_BPF", perfmon ? "CAP_PERFMON" : "no CAP_PERFMON");
  }
  return ok_status();
}

namespace {

Result<LoadedPrograms> load_with_mode(const BpfLoadOptions& options, bool use_btf) {
  LoadedPrograms out;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return Error::format("count possible CPUs: {}", std::strerror(-ncpu));
  out.possible_cpus = static_cast<std::uint32_t>(ncpu);
  out.slots_per_cpu = options.slots_per_cpu;

  out.skel.reset(cpu_account__open());
  if (!out.skel) return errno_error("open BPF skeleton cpu_account");
  cpu_account* skel = out.skel.get();

  // Read-only config and sizes must be set between open and load.
  skel->rodata->nslots = options.slots_per_cpu;
  skel->rodata->load_mono_ns = monotonic_ns();
  skel->rodata->count_wait = use_btf && options.run_queue_wait;
  const std::pair<bpf_map*, std::uint32_t> sizes[] = {
      {skel->maps.cpus, out.possible_cpus},
      {skel->maps.slots, out.possible_cpus * options.slots_per_cpu},
      {skel->maps.procs, options.max_processes},
      {skel->maps.execs, options.exec_cache},
  };
  int err = 0;
  for (const auto& [map, entries] : sizes) {
    if (!err) err = bpf_map__set_max_entries(map, entries);
  }
  if (err) return errno_error("size BPF maps", -err);

  bpf_program* btf_progs[] = {skel->progs.tally_switch_btf, skel->progs.tally_exit_btf,
                              skel->progs.tally_exec_btf};
  bpf_program* raw_progs[] = {skel->progs.tally_switch_raw, skel->progs.tally_exit_raw,
                              skel->progs.tally_exec_raw};
  for (auto* p : btf_progs) bpf_program__set_autoload(p, use_btf);
  for (auto* p : raw_progs) bpf_program__set_autoload(p, !use_btf);
  // Only the tp_btf switch program uses it; raw_tp serves kernels that may
  // not have task storage for tracing programs.
  bpf_map__set_autocreate(skel->maps.thread_waits, use_btf && options.run_queue_wait);
  out.mode = use_btf ? "tp_btf" : "raw_tp";

  take_libbpf_log();
  err = cpu_account__load(skel);
  if (err) {
    return Error::format("load BPF programs ({}): {} {}", out.mode, std::strerror(-err),
                         take_libbpf_log());
  }
  out.sync_fd = bpf_program__fd(skel->progs.tally_sync);
  out.counts_wait = use_btf && options.run_queue_wait;
  for (auto* p : use_btf ? btf_progs : raw_progs) {
    bpf_link* link = bpf_program__attach(p);
    if (!link) {
      return Error::format("attach BPF program {} ({}): {} {}", bpf_program__name(p), out.mode,
                           std::strerror(errno), take_libbpf_log());
    }
    out.links.emplace_back(link);
    out.programs.push_back(p);
  }
  return out;
}

}  // namespace

Result<LoadedPrograms> load_cpu_account(const BpfLoadOptions& options) {
  static std::once_flag print_once;
  std::call_once(print_once, [] { libbpf_set_print(libbpf_print); });

  if (options.slots_per_cpu == 0 || (options.slots_per_cpu & (options.slots_per_cpu - 1)) != 0) {
    return Error::format("slots per CPU must be a power of two, got {}", options.slots_per_cpu);
  }
  if (auto st = check_bpf_prerequisites(); !st.ok()) return st.error();

  if (options.mode == AttachMode::raw_tp) return load_with_mode(options, false);
  if (options.mode == AttachMode::tp_btf) return load_with_mode(options, true);

  // Probe: tp_btf needs the tracepoint's prototype in kernel BTF (5.5+) and
  // the verifier's support for BTF-typed tracing; try it, fall back to raw_tp.
  // Kernel floor of both modes: 5.11, since tally_sync (loaded in either
  // mode) calls bpf_get_current_task_btf(). The raw_tp fallback serves
  // kernels with BTF but without the btf_trace_* prototypes or the verifier
  // support (vendor kernels), not older kernels: below 5.11 both fail and
  // the daemon falls back to procfs (README, "Kernel requirements").
  std::string reason;
  if (libbpf_find_vmlinux_btf_id("sched_switch", BPF_TRACE_RAW_TP) < 0) {
    reason = "kernel BTF has no btf_trace_sched_switch";
  } else {
    auto btf = load_with_mode(options, true);
    if (btf.ok()) return btf;
    reason = btf.error().message();
  }
  auto raw = load_with_mode(options, false);
  if (!raw.ok()) return raw.error().context(fmt::format("tp_btf unusable ({})", reason));
  log::info("tp_btf unusable ({}): sched_switch attached as raw_tp", reason);
  return raw;
}

}  // namespace tally::accounting
