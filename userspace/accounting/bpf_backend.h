// The eBPF backend: CPU time counted in the kernel by cpu_account.bpf.c.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "accounting/backend.h"
#include "accounting/bpf_loader.h"
#include "accounting/mapped_region.h"

#include <linux/types.h>
#include "cpu_account.h"

namespace tally::accounting {

class BpfBackend final : public Backend {
 public:
  // Loads and attaches the programs. Errors name what is missing (BTF,
  // capability) or why the kernel refused the programs.
  static Result<std::unique_ptr<BpfBackend>> create(const BpfLoadOptions& options);

  Result<Snapshot> read() override;
  BackendInfo info() const override;

 private:
  // Per-process bookkeeping, so each read costs work in proportion to what
  // changed, not to the size of the slot arrays.
  struct Tracked {
    std::uint64_t slot_sum = 0;       // sum of this process's slot values (all CPUs)
    std::uint64_t spilled = 0;        // procs[key].spilled_ns at the last read
    std::uint64_t wait_slot_sum = 0;  // the same two for run-queue wait
    std::uint64_t spilled_wait = 0;
    std::uint32_t residency = 0;              // slots currently holding this key
    std::uint64_t exec_ns = 0;                // last exec reported
    std::uint32_t idle_reads = 0;             // reads since its total last changed
    bool dead = false;                        // exit reported; ignore leftover slot time
    std::uint32_t exit_reads_unfinished = 0;  // reads that saw EXITED without FINAL
  };

  explicit BpfBackend(LoadedPrograms programs, MappedRegion cpus, MappedRegion slots);

  // Charges each CPU's current task for its time so far (tally_sync).
  void sync_cpus();
  Status read_procs(std::vector<ProcessReading>& exited);
  void scan_slots();
  void read_cpus(Snapshot& snap);
  void attach_exec_info(ProcessReading& r, bool exited);
  void collect_orphans(std::vector<ProcessReading>& exited);
  Tracked& touch(const ProcessKey& key);
  // After the slot scan: spills made since procs was read (slots taken
  // meanwhile, whose time the scan subtracted or never saw), and exits.
  void catch_up_spills();
  // Whether every slot the last scan counted for the process still has it
  // (same owner, same generation): walks the slot copy, so only for the
  // rare process that spilled during a read.
  bool counted_slots_intact(const ProcessKey& key) const;

  LoadedPrograms programs_;
  MappedRegion cpus_;
  MappedRegion slots_;
  std::vector<tally_slot> prev_slots_;
  std::unordered_map<ProcessKey, Tracked, ProcessKeyHash> tracked_;
  std::vector<ProcessKey> changed_;
  std::vector<tally_proc_key> batch_keys_;
  std::vector<tally_proc> batch_values_;
  std::uint64_t last_exec_count_ = 0;
  std::uint64_t reads_ = 0;
  std::uint64_t procs_used_ = 0;
  std::uint64_t recursion_misses_ = 0;
  bool exec_seen_changed_ = false;
};

}  // namespace tally::accounting
