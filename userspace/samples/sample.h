// What tallyd measures: one sample per process per interval, and one for
// the host. Everything downstream of the sampler (the outbox's compact
// records, the JSON lines of --stdout and the native protocol, every sink
// format) reads and writes these structs; a new field starts here, in its
// codecs (json_line, json_line_reader, compact_records) and their tests.
// Field names are part of the protocol (docs/protocol.md).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace tally::samples {

struct ProcessSample {
  std::uint64_t ts_ns = 0;  // interval end, Unix epoch ns
  std::uint64_t interval_ns = 0;
  std::string host;
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;  // process start, Unix epoch ns
  std::string comm;
  std::string cmdline;
  std::string cgroup;
  // What the cgroup path says (accounting/container_ref.h), and what the
  // kubelet says of the pod; each empty when unknown. Like comm, cmdline
  // and cgroup they belong to the process, not to the interval ("names").
  std::string container_id;
  std::string container_runtime;
  std::string pod_uid;
  std::string pod_qos;
  std::string pod;
  std::string pod_namespace;  // "namespace" in the protocol
  std::string container;
  std::uint64_t cpu_ns = 0;     // CPU used in this interval, all threads
  double cpu_pct = 0;           // cpu_ns / interval_ns * 100 (above 100: threads)
  std::uint64_t wait_ns = 0;    // runnable but without a CPU, all threads
  double wait_pct = 0;          // wait_ns / interval_ns * 100
  std::uint64_t rss_bytes = 0;  // at interval end; 0 once exited
  bool exited = false;
};

struct HostSample {
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  std::string host;
  std::uint32_t ncpu = 0;
  std::uint64_t busy_ns = 0;    // non-idle CPU time, all CPUs
  double cpu_pct = 0;           // busy_ns / (interval_ns * ncpu) * 100
  std::uint32_t processes = 0;  // process lines in this interval
  std::uint64_t dropped_updates = 0;
  std::uint64_t steal_ns = 0;  // all CPUs, /proc/stat (a VM whose host was busy)
  // CPU pressure (/proc/pressure/cpu): time some runnable task waited for a
  // CPU, and time all non-idle tasks did; 0 where PSI is off.
  std::uint64_t psi_some_ns = 0;
  std::uint64_t psi_full_ns = 0;
  // busy_ns minus the CPU of all process lines: time counted for the host
  // but for no process (lost updates, or a reading still to catch up).
  std::int64_t unaccounted_ns = 0;
  // Run time of tally's own BPF programs (0 unless kernel.bpf_stats_enabled).
  std::uint64_t bpf_run_ns = 0;
};

// A cgroup over one interval, from its own files (accounting/cgroup_stats.h):
// one line per cgroup whose processes had CPU in the interval, the cgroup
// being a process line's `cgroup` (a container, a service, a pod's
// container). Numbers are deltas over the interval; each group of them is
// written only where the host offers it ("_known").
struct CgroupSample {
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  std::string host;
  std::string cgroup;  // the path, as in process lines
  // As in process lines, from the path and the kubelet.
  std::string container_id;
  std::string container_runtime;
  std::string pod_uid;
  std::string pod_qos;
  std::string pod;
  std::string pod_namespace;
  std::string container;
  std::uint32_t processes = 0;       // process lines of this interval in it
  std::uint64_t process_cpu_ns = 0;  // their cpu_ns, summed
  // The cgroup's own usage (cpu.stat usage_usec or cpuacct.usage), which
  // also counts its descendants' processes.
  bool usage_known = false;
  std::uint64_t cpu_ns = 0;
  double cpu_pct = 0;
  // Throttling by a CPU limit (a cpu controller answered).
  bool throttling_known = false;
  std::uint64_t nr_periods = 0;
  std::uint64_t nr_throttled = 0;
  std::uint64_t throttled_ns = 0;
  // cpu.pressure (v2): some/full stall time in the interval.
  bool pressure_known = false;
  std::uint64_t psi_some_ns = 0;
  std::uint64_t psi_full_ns = 0;
  double limit_cpus = 0;  // quota / period: 0.2 is 20% of one CPU; 0 none
};

// A stored JSON line of a kind this tallyd does not know (written by a newer
// one before a downgrade). Kept as it was so that the native format forwards
// it and a batch keeps its sample count; the other formats skip it.
struct UnknownSample {
  std::string json_line;
};

using Sample = std::variant<ProcessSample, HostSample, CgroupSample, UnknownSample>;

// One interval's samples, as the sampler makes them.
struct IntervalSamples {
  std::vector<ProcessSample> processes;
  std::vector<CgroupSample> cgroups;  // by path
  HostSample host;
};

// The container and pod fields that process and cgroup lines share, in the
// order the protocol lists them: the one list every codec walks.
template <typename Line>
auto container_fields(Line& line) {
  return std::array{&line.container_id, &line.container_runtime, &line.pod_uid,  &line.pod_qos,
                    &line.pod,          &line.pod_namespace,     &line.container};
}

template <typename From, typename To>
void copy_container_fields(const From& from, To& to) {
  const auto source = container_fields(from);
  const auto target = container_fields(to);
  for (std::size_t i = 0; i < source.size(); ++i) *target[i] = *source[i];
}

// A digest of a process's names (comm, cmdline, cgroup, container and pod
// fields): what encoders compare to notice that an exec or the kubelet
// changed them. The same bytes split differently between fields give
// another digest.
std::uint64_t names_digest(const ProcessSample& s);
std::uint64_t names_digest(const CgroupSample& s);  // its path, container and pod fields

// part_ns / whole_ns * 100, rounded to 2 decimals (0 for an empty whole).
double percent(std::uint64_t part_ns, std::uint64_t whole_ns);

// A cgroup's limit in CPUs as the outbox stores it, in millionths of a
// CPU; the sampler rounds it so, so that it reads back exactly.
std::uint64_t cpu_millionths(double cpus);
double cpus_of_millionths(std::uint64_t millionths);

// A host's cpu_pct: busy time over the interval times the CPUs (at least one).
double host_percent(std::uint64_t busy_ns, std::uint64_t interval_ns, std::uint32_t ncpu);

}  // namespace tally::samples
