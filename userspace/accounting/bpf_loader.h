// Loading and attaching the cpu_account BPF programs.
//
// Order, as in every libbpf tool: check prerequisites, open the skeleton, set
// read-only config and map sizes, choose the attach mode, load, attach. The
// attach mode is probed, not guessed: tp_btf is tried when the kernel's BTF
// has the tracepoint's prototype, and raw_tp is used when tp_btf cannot load.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tally/result.h"

struct cpu_account;  // generated skeleton

namespace tally::accounting {

enum class AttachMode { automatic, tp_btf, raw_tp };

struct BpfLoadOptions {
  AttachMode mode = AttachMode::automatic;
  std::uint32_t slots_per_cpu = 1024;   // power of two
  std::uint32_t max_processes = 16384;  // procs map entries
  std::uint32_t exec_cache = 4096;      // execs LRU entries
  bool run_queue_wait = true;           // charge run-queue wait (tp_btf only)
};

struct SkeletonDeleter {
  void operator()(cpu_account* skel) const;
};
using SkeletonPtr = std::unique_ptr<cpu_account, SkeletonDeleter>;

struct LinkDeleter {
  void operator()(bpf_link* link) const { bpf_link__destroy(link); }
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;

struct LoadedPrograms {
  SkeletonPtr skel;
  std::vector<LinkPtr> links;          // destroyed (detached) before the skeleton
  std::vector<bpf_program*> programs;  // the attached ones
  int sync_fd = -1;                    // tally_sync: run on each CPU before a read
  std::string mode;                    // "tp_btf" or "raw_tp"
  bool counts_wait = false;            // run-queue wait is charged
  std::uint32_t possible_cpus = 0;
  std::uint32_t slots_per_cpu = 0;

  LoadedPrograms() = default;
  LoadedPrograms(LoadedPrograms&&) noexcept = default;
  LoadedPrograms& operator=(LoadedPrograms&&) noexcept = default;
  ~LoadedPrograms() { links.clear(); }
};

// Kernel BTF present and enough privilege to load tracing programs; the error
// names the missing file or capability.
Status check_bpf_prerequisites();

Result<LoadedPrograms> load_cpu_account(const BpfLoadOptions& options);

}  // namespace tally::accounting
