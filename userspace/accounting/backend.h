// The seam between "where CPU time comes from" (eBPF or /proc polling) and
// everything after it (deltas, enrichment, samples).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "accounting/process_key.h"
#include "tally/result.h"

namespace tally::accounting {

// What the kernel recorded at a process's last exec (bpf backend only).
struct ExecInfo {
  std::uint64_t exec_mono_ns = 0;
  std::string comm;
  std::string args;  // NUL-separated, as in /proc/PID/cmdline, possibly cut
};

struct ProcessReading {
  ProcessKey key;
  // Cumulative CPU time since tracking of this process began (attach time or
  // the process's start, whichever is later). Readings may lag; consumers
  // clamp so that reported totals never go backwards.
  std::uint64_t cpu_ns = 0;
  // Cumulative run-queue wait of its threads (time runnable without a CPU),
  // over the same span and with the same lag rules; 0 where the backend
  // cannot see it.
  std::uint64_t wait_ns = 0;
  bool exited = false;
  std::uint32_t ppid = 0;        // known for exited processes
  std::string exit_comm;         // comm at exit (bpf backend), empty otherwise
  std::optional<ExecInfo> exec;  // set when an exec was seen since the last read
};

struct HostReading {
  std::uint32_t ncpu = 0;
  std::uint64_t busy_ns = 0;  // cumulative, all CPUs
  std::uint64_t idle_ns = 0;  // cumulative, all CPUs
  // Cumulative run time of the backend's own kernel programs, from the
  // kernel's BPF statistics (0 while kernel.bpf_stats_enabled is off).
  std::uint64_t own_run_ns = 0;
};

struct Snapshot {
  std::uint64_t mono_ns = 0;      // CLOCK_MONOTONIC at the read
  std::uint64_t realtime_ns = 0;  // CLOCK_REALTIME at the read
  // Every process whose total may have changed since the previous read,
  // and every process that exited since then (exactly once each).
  std::vector<ProcessReading> processes;
  HostReading host;
  std::uint64_t dropped_total = 0;  // cumulative updates the backend lost
};

// Self-description for `tally status` and the start-up log line.
struct BackendInfo {
  std::string name;                   // "bpf" or "procfs"
  std::string attach_mode;            // "tp_btf", "raw_tp", or "" for procfs
  bool counts_wait = false;           // wait_ns is measured (else always 0)
  std::vector<std::string> programs;  // attached program names
  std::uint64_t map_capacity = 0;     // procs map entries (bpf)
  std::uint64_t map_used = 0;         // entries in use at the last read
  std::uint64_t recursion_misses = 0;
  std::uint64_t unseen_exits = 0;  // procfs: forks never seen as processes
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Reads cumulative counters. Called from one thread at a time.
  virtual Result<Snapshot> read() = 0;
  virtual BackendInfo info() const = 0;
};

}  // namespace tally::accounting
