#include "accounting/bpf_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>

#include "accounting/procfs.h"
#include "cpu_account.skel.h"
#include "tally/log.h"
#include "tally/time_util.h"

namespace tally::accounting {

static_assert(sizeof(tally_cpu_state) == 64, "one cache line per CPU");
static_assert(sizeof(tally_slot) == 32, "two slots per cache line");
static_assert(sizeof(tally_proc_key) == 16);
static_assert(sizeof(tally_proc) == 48);
static_assert(sizeof(tally_exec) == 16 + TALLY_COMM_LEN + TALLY_ARGS_LEN);

namespace {

#define TALLY_COMPILER_BARRIER() asm volatile("" ::: "memory")

std::size_t page_round(std::size_t n) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

std::string comm_string(const char* comm) {
  return std::string(comm, strnlen(comm, TALLY_COMM_LEN));
}

}  // namespace

Result<std::unique_ptr<BpfBackend>> BpfBackend::create(const BpfLoadOptions& options) {
  auto loaded = load_cpu_account(options);
  if (!loaded.ok()) return loaded.error();
  LoadedPrograms programs = std::move(loaded).value();
  cpu_account* skel = programs.skel.get();

  auto cpus = MappedRegion::map_readonly(
      bpf_map__fd(skel->maps.cpus), page_round(sizeof(tally_cpu_state) * programs.possible_cpus),
      "BPF map cpus");
  if (!cpus.ok()) return cpus.error();
  auto slots = MappedRegion::map_readonly(
      bpf_map__fd(skel->maps.slots),
      page_round(sizeof(tally_slot) * programs.possible_cpus * programs.slots_per_cpu),
      "BPF map slots");
  if (!slots.ok()) return slots.error();

  std::unique_ptr<BpfBackend> backend(
      new BpfBackend(std::move(programs), std::move(cpus).value(), std::move(slots).value()));
  // Start every CPU's clock now, so the first interval counts from attach
  // even on a CPU whose task never switches.
  backend->sync_cpus();
  return backend;
}

BpfBackend::BpfBackend(LoadedPrograms programs, MappedRegion cpus, MappedRegion slots)
    : programs_(std::move(programs)), cpus_(std::move(cpus)), slots_(std::move(slots)) {
  prev_slots_.assign(static_cast<std::size_t>(programs_.possible_cpus) * programs_.slots_per_cpu,
                     tally_slot{});
  batch_keys_.resize(512);
  batch_values_.resize(512);
}

BpfBackend::Tracked& BpfBackend::touch(const ProcessKey& key) {
  Tracked& t = tracked_[key];
  t.idle_reads = 0;
  changed_.push_back(key);  // duplicates are removed before use
  return t;
}

void BpfBackend::sync_cpus() {
  for (std::uint32_t cpu = 0; cpu < programs_.possible_cpus; ++cpu) {
    LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu);
    // Offline CPUs refuse (ENXIO): they have no current task to charge.
    bpf_prog_test_run_opts(programs_.sync_fd, &opts);
  }
}

// procs first: a slot evicted between this read and the slot scan then shows
// its time in neither place (a delay until the next read), never in both.
Status BpfBackend::read_procs(std::vector<ProcessReading>& exited) {
  const int fd = bpf_map__fd(programs_.skel->maps.procs);
  __u32 in_batch = 0, out_batch = 0;
  bool first = true;
  std::vector<tally_proc_key> residue;
  procs_used_ = 0;
  for (;;) {
    __u32 count = static_cast<__u32>(batch_keys_.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, batch_keys_.data(),
                                   batch_values_.data(), &count, &opts);
    const int saved_errno = errno;
    if (err && saved_errno == ENOSPC && count == 0) {
      // A hash bucket holds more entries than the buffer: grow and retry.
      batch_keys_.resize(batch_keys_.size() * 2);
      batch_values_.resize(batch_values_.size() * 2);
      continue;
    }
    if (err && saved_errno != ENOENT) return errno_error("read BPF map procs", saved_errno);
    for (__u32 i = 0; i < count; ++i) {
      const tally_proc_key& k = batch_keys_[i];
      const tally_proc& v = batch_values_[i];
      const ProcessKey key{k.tgid, k.start_ns};
      ++procs_used_;
      auto it = tracked_.find(key);
      if (it != tracked_.end() && it->second.dead) {
        residue.push_back(k);  // time a dead process left in a slot, spilled late
        continue;
      }
      Tracked& t = it != tracked_.end() ? it->second : tracked_[key];
      if (t.spilled != v.spilled_ns || t.spilled_wait != v.spilled_wait_ns ||
          it == tracked_.end()) {
        t.spilled = v.spilled_ns;
        t.spilled_wait = v.spilled_wait_ns;
        touch(key);
      }
      // Reported once its last switch was charged (FINAL), so that the exit
      // line holds all of its time; a read later regardless, in case the
      // mark never comes (a thread of the process still to switch out).
      if ((v.flags & TALLY_PROC_EXITED) &&
          ((v.flags & TALLY_PROC_FINAL) || ++t.exit_reads_unfinished > 1)) {
        ProcessReading r;
        r.key = key;
        r.exited = true;
        r.ppid = v.ppid;
        r.exit_comm = comm_string(v.comm);
        exited.push_back(std::move(r));
      }
    }
    if (err) break;  // ENOENT: that was the last batch
    in_batch = out_batch;
    first = false;
  }
  for (const auto& k : residue) bpf_map_delete_elem(fd, &k);
  return ok_status();
}

void BpfBackend::scan_slots() {
  const volatile tally_slot* slots = slots_.as<tally_slot>();
  const std::size_t n = prev_slots_.size();
  for (std::size_t i = 0; i < n; ++i) {
    const volatile tally_slot& s = slots[i];
    const std::uint32_t tgid = s.tgid;
    tally_slot& prev = prev_slots_[i];
    if (tgid == 0) continue;  // never used, or being rewritten right now
    TALLY_COMPILER_BARRIER();
    const std::uint64_t start = s.start_ns;
    const std::uint32_t gen = s.gen;
    const std::uint64_t cpu_ns = s.cpu_ns;
    const std::uint64_t wait_ns = s.wait_ns;
    TALLY_COMPILER_BARRIER();
    if (s.tgid != tgid || s.start_ns != start || s.gen != gen) continue;  // rewritten while read
    if (prev.gen == gen && prev.tgid == tgid && prev.start_ns == start) {
      // Both only grow while the slot keeps its owner; a read that caught
      // one store but not the other is completed by the next read.
      if (cpu_ns <= prev.cpu_ns && wait_ns <= prev.wait_ns) continue;
      Tracked& t = touch(ProcessKey{tgid, start});
      if (cpu_ns > prev.cpu_ns) {
        t.slot_sum += cpu_ns - prev.cpu_ns;
        prev.cpu_ns = cpu_ns;
      }
      if (wait_ns > prev.wait_ns) {
        t.wait_slot_sum += wait_ns - prev.wait_ns;
        prev.wait_ns = wait_ns;
      }
      continue;
    }
    if (prev.tgid != 0) {  // evicted: its time went to procs
      auto it = tracked_.find(ProcessKey{prev.tgid, prev.start_ns});
      if (it != tracked_.end()) {
        Tracked& old = it->second;
        old.slot_sum -= std::min<std::uint64_t>(old.slot_sum, prev.cpu_ns);
        old.wait_slot_sum -= std::min<std::uint64_t>(old.wait_slot_sum, prev.wait_ns);
        if (old.residency > 0) --old.residency;
        // A dead process's last slot just went: its time was spilled into
        // procs, maybe after this read's procs pass. Keep it known for two
        // more reads, so that spill is found and deleted as the residue of
        // a reported process, not taken for a new one.
        if (old.dead && old.residency == 0) old.idle_reads = 0;
        // The eviction spilled that time into procs, maybe after procs was
        // read: catch_up_spills() reads it again after the scan.
        if (!old.dead) touch(it->first);
      }
    }
    Tracked& t = touch(ProcessKey{tgid, start});
    t.slot_sum += cpu_ns;
    t.wait_slot_sum += wait_ns;
    ++t.residency;
    prev.tgid = tgid;
    prev.start_ns = start;
    prev.cpu_ns = cpu_ns;
    prev.wait_ns = wait_ns;
    prev.gen = gen;
  }
}

void BpfBackend::catch_up_spills() {
  const int fd = bpf_map__fd(programs_.skel->maps.procs);
  __u32 in_batch = 0, out_batch = 0;
  bool first = true;
  for (;;) {
    __u32 count = static_cast<__u32>(batch_keys_.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch,
                                         batch_keys_.data(), batch_values_.data(), &count, &opts);
    const int saved_errno = errno;
    if (err && saved_errno == ENOSPC && count == 0) {
      batch_keys_.resize(batch_keys_.size() * 2);
      batch_values_.resize(batch_values_.size() * 2);
      continue;
    }
    if (err && saved_errno != ENOENT) return;  // the next read catches up instead
    for (__u32 i = 0; i < count; ++i) {
      // A process first seen here spilled from a slot the scan never saw
      // it in (it started and lost its slot during this read).
      auto [it, added] =
          tracked_.try_emplace(ProcessKey{batch_keys_[i].tgid, batch_keys_[i].start_ns});
      if (it->second.dead) continue;
      Tracked& t = it->second;
      if (batch_values_[i].spilled_ns > t.spilled ||
          batch_values_[i].spilled_wait_ns > t.spilled_wait) {
        // What it spilled since procs was read came from slots the scan
        // subtracted or never saw, unless a slot the scan counted has been
        // taken since: then that time would count twice, and waits for the
        // next read instead.
        if (t.residency != 0 && !counted_slots_intact(it->first)) continue;
        t.spilled = std::max<std::uint64_t>(t.spilled, batch_values_[i].spilled_ns);
        t.spilled_wait = std::max<std::uint64_t>(t.spilled_wait, batch_values_[i].spilled_wait_ns);
        touch(it->first);
      }
    }
    if (err) break;
    in_batch = out_batch;
    first = false;
  }
}

bool BpfBackend::counted_slots_intact(const ProcessKey& key) const {
  const volatile tally_slot* slots = slots_.as<tally_slot>();
  for (std::size_t i = 0; i < prev_slots_.size(); ++i) {
    const tally_slot& counted = prev_slots_[i];
    if (counted.tgid != key.tgid || counted.start_ns != key.start_ns) continue;
    if (slots[i].tgid != counted.tgid || slots[i].start_ns != counted.start_ns ||
        slots[i].gen != counted.gen) {
      return false;
    }
  }
  return true;
}

void BpfBackend::read_cpus(Snapshot& snap) {
  const volatile tally_cpu_state* cpus = cpus_.as<tally_cpu_state>();
  std::uint64_t drops = 0, execs = 0;
  for (std::uint32_t cpu = 0; cpu < programs_.possible_cpus; ++cpu) {
    // Each field is one aligned 64-bit word that only grows: reading them
    // one by one while the CPU keeps switching is safe.
    snap.host.busy_ns += cpus[cpu].busy_ns;
    snap.host.idle_ns += cpus[cpu].idle_ns;
    drops += cpus[cpu].drops;
    execs += cpus[cpu].execs;
  }
  snap.dropped_total = drops;
  if (execs != last_exec_count_) {
    last_exec_count_ = execs;
    exec_seen_changed_ = true;
  }
}

void BpfBackend::attach_exec_info(ProcessReading& r, bool exited) {
  const int fd = bpf_map__fd(programs_.skel->maps.execs);
  tally_proc_key k{};
  k.tgid = r.key.tgid;
  k.start_ns = r.key.start_ns;
  tally_exec e{};
  if (bpf_map_lookup_elem(fd, &k, &e) != 0) return;
  auto it = tracked_.find(r.key);
  if (exited || it == tracked_.end() || e.exec_ns > it->second.exec_ns) {
    ExecInfo info;
    info.exec_mono_ns = e.exec_ns;
    info.comm = comm_string(e.comm);
    info.args.assign(e.args, std::min<std::size_t>(e.args_len, TALLY_ARGS_LEN));
    r.exec = std::move(info);
    if (it != tracked_.end()) it->second.exec_ns = e.exec_ns;
  }
  if (exited) bpf_map_delete_elem(fd, &k);
}

void BpfBackend::collect_orphans(std::vector<ProcessReading>& exited) {
  // A process whose exit record was dropped (procs full) would otherwise be
  // tracked forever: find the ones /proc no longer has and report them.
  for (auto& [key, t] : tracked_) {
    if (t.dead || t.idle_reads < 2) continue;
    if (procfs::is_same_incarnation(key.tgid, key.start_ns)) continue;
    ProcessReading r;
    r.key = key;
    r.exited = true;
    exited.push_back(std::move(r));
  }
}

Result<Snapshot> BpfBackend::read() {
  Snapshot snap;
  changed_.clear();
  exec_seen_changed_ = false;
  ++reads_;

  sync_cpus();
  snap.mono_ns = monotonic_ns();
  snap.realtime_ns = realtime_ns();
  std::vector<ProcessReading> exited;
  if (auto st = read_procs(exited); !st.ok()) return st.error();
  scan_slots();
  catch_up_spills();
  read_cpus(snap);
  snap.host.ncpu = static_cast<std::uint32_t>(sysconf(_SC_NPROCESSORS_ONLN));
  if (reads_ % 16 == 0) collect_orphans(exited);

  auto total_of = [](const Tracked& t) { return t.spilled + t.slot_sum; };
  auto wait_of = [](const Tracked& t) { return t.spilled_wait + t.wait_slot_sum; };

  std::sort(changed_.begin(), changed_.end(), [](const ProcessKey& a, const ProcessKey& b) {
    return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
  });
  changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());

  const int procs_fd = bpf_map__fd(programs_.skel->maps.procs);
  for (auto& r : exited) {
    Tracked& t = tracked_[r.key];
    r.cpu_ns = total_of(t);
    r.wait_ns = wait_of(t);
    attach_exec_info(r, true);
    t.dead = true;
    tally_proc_key k{};
    k.tgid = r.key.tgid;
    k.start_ns = r.key.start_ns;
    bpf_map_delete_elem(procs_fd, &k);
  }

  snap.processes.reserve(changed_.size() + exited.size());
  for (const auto& key : changed_) {
    const Tracked& t = tracked_[key];
    if (t.dead) continue;
    ProcessReading r;
    r.key = key;
    r.cpu_ns = total_of(t);
    r.wait_ns = wait_of(t);
    if (exec_seen_changed_) attach_exec_info(r, false);
    snap.processes.push_back(std::move(r));
  }
  for (auto& r : exited) snap.processes.push_back(std::move(r));

  // Age entries; forget dead ones once no slot holds them any more (one
  // extra read lets a late spill of their time be found and deleted).
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    Tracked& t = it->second;
    if (t.idle_reads < UINT32_MAX) ++t.idle_reads;
    if (t.dead && t.residency == 0 && t.idle_reads > 2) {
      it = tracked_.erase(it);
    } else {
      ++it;
    }
  }

  std::uint64_t misses = 0, run_ns = 0;
  for (bpf_program* p : programs_.programs) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0) {
      misses += info.recursion_misses;
      run_ns += info.run_time_ns;
    }
  }
  snap.host.own_run_ns = run_ns;
  recursion_misses_ = misses;
  snap.dropped_total += misses;
  return snap;
}

BackendInfo BpfBackend::info() const {
  BackendInfo info;
  info.name = "bpf";
  info.attach_mode = programs_.mode;
  info.counts_wait = programs_.counts_wait;
  for (bpf_program* p : programs_.programs) info.programs.emplace_back(bpf_program__name(p));
  info.map_capacity = bpf_map__max_entries(programs_.skel->maps.procs);
  info.map_used = procs_used_;
  info.recursion_misses = recursion_misses_;
  return info;
}

}  // namespace tally::accounting
