#include "bpf_backend.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>

#include "cpu_account.skel.h"
#include "procfs.h"
#include "tally/log.h"
#include "tally/time_util.h"

namespace tally::accounting {

static_assert(sizeof(tally_cpu_state) == 64, "one cache line per CPU");
static_assert(sizeof(tally_slot) == 32, "two slots per cache line");
static_assert(sizeof(tally_proc_key) == 16);
static_assert(sizeof(tally_proc) == 40);
static_assert(sizeof(tally_exec) == 16 + TALLY_COMM_LEN + TALLY_ARGS_LEN);

namespace {

#define TALLY_COMPILER_BARRIER() asm volatile("" ::: "memory")

std::size_t page_round(std::size_t n) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

// A CPU records who runs on it at its first context switch after attach. A
// task that never leaves its CPU (a busy loop on an idle core) would stay
// invisible until then, so we visit every online CPU once: migrating this
// thread there forces a switch on it.
void visit_every_cpu() {
  cpu_set_t original;
  if (sched_getaffinity(0, sizeof original, &original) != 0) return;
  const long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  for (long cpu = 0; cpu < ncpu && cpu < CPU_SETSIZE; ++cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(static_cast<int>(cpu), &one);
    if (sched_setaffinity(0, sizeof one, &one) == 0) sched_yield();
  }
  sched_setaffinity(0, sizeof original, &original);
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
  visit_every_cpu();
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

// procs first: a slot evicted between this read and the slot scan then shows
// its time in neither place (a delay until the next read), never in both.
Status BpfBackend::read_procs(Snapshot& snap, std::vector<ProcessReading>& exited) {
  (void)snap;
  const int fd = bpf_map__fd(programs_.skel->maps.procs);
  __u32 in_batch = 0, out_batch = 0;
  bool first = true;
  std::vector<tally_proc_key> residue;
  procs_used_ = 0;
  for (;;) {
    __u32 count = static_cast<__u32>(batch_keys_.size());
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch,
                                   batch_keys_.data(), batch_values_.data(), &count, &opts);
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
      if (t.spilled != v.spilled_ns || it == tracked_.end()) {
        t.spilled = v.spilled_ns;
        touch(key);
      }
      if (v.flags & TALLY_PROC_EXITED) {
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
    const std::uint64_t gen = s.gen;
    const std::uint64_t cpu_ns = s.cpu_ns;
    TALLY_COMPILER_BARRIER();
    if (s.tgid != tgid || s.start_ns != start || s.gen != gen) continue;  // rewritten while read
    if (prev.gen == gen && prev.tgid == tgid && prev.start_ns == start) {
      if (cpu_ns <= prev.cpu_ns) continue;
      touch(ProcessKey{tgid, start}).slot_sum += cpu_ns - prev.cpu_ns;
      prev.cpu_ns = cpu_ns;
      continue;
    }
    if (prev.tgid != 0) {  // evicted: its time went to procs
      auto it = tracked_.find(ProcessKey{prev.tgid, prev.start_ns});
      if (it != tracked_.end()) {
        Tracked& old = it->second;
        old.slot_sum -= std::min<std::uint64_t>(old.slot_sum, prev.cpu_ns);
        if (old.residency > 0) --old.residency;
        if (!old.dead) touch(it->first);
      }
    }
    Tracked& t = touch(ProcessKey{tgid, start});
    t.slot_sum += cpu_ns;
    ++t.residency;
    prev.tgid = tgid;
    prev.start_ns = start;
    prev.cpu_ns = cpu_ns;
    prev.gen = gen;
  }
}

void BpfBackend::read_cpus(std::uint64_t now_mono, Snapshot& snap) {
  const volatile tally_cpu_state* cpus = cpus_.as<tally_cpu_state>();
  std::uint64_t drops = 0, execs = 0;
  for (std::uint32_t cpu = 0; cpu < programs_.possible_cpus; ++cpu) {
    const volatile tally_cpu_state& cs = cpus[cpu];
    tally_cpu_state copy{};
    bool consistent = false;
    for (int attempt = 0; attempt < 8 && !consistent; ++attempt) {
      const std::uint64_t seq = cs.seq;
      TALLY_COMPILER_BARRIER();
      copy.since_ns = cs.since_ns;
      copy.start_ns = cs.start_ns;
      copy.tgid = cs.tgid;
      copy.pid = cs.pid;
      copy.idle_ns = cs.idle_ns;
      copy.busy_ns = cs.busy_ns;
      TALLY_COMPILER_BARRIER();
      consistent = (seq & 1) == 0 && cs.seq == seq;
    }
    drops += cs.drops;
    execs += cs.execs;
    snap.host.busy_ns += copy.busy_ns;
    snap.host.idle_ns += copy.idle_ns;
    // In-flight time of the task on the CPU now. Skipped if the CPU kept
    // switching while we read: that time is in its slot at the next read.
    if (!consistent || copy.since_ns == 0 || copy.since_ns >= now_mono) continue;
    const std::uint64_t running = now_mono - copy.since_ns;
    if (copy.pid == 0) {
      snap.host.idle_ns += running;
    } else {
      snap.host.busy_ns += running;
      const ProcessKey key{copy.tgid, copy.start_ns};
      auto it = tracked_.find(key);
      if (it != tracked_.end() && it->second.dead) continue;
      touch(key);
      inflight_[key] += running;
    }
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
    ++orphan_exits_;
  }
}

Result<Snapshot> BpfBackend::read() {
  Snapshot snap;
  changed_.clear();
  inflight_.clear();
  exec_seen_changed_ = false;
  ++reads_;

  std::vector<ProcessReading> exited;
  if (auto st = read_procs(snap, exited); !st.ok()) return st.error();
  scan_slots();
  snap.mono_ns = monotonic_ns();
  snap.realtime_ns = realtime_ns();
  read_cpus(snap.mono_ns, snap);
  snap.host.ncpu = static_cast<std::uint32_t>(sysconf(_SC_NPROCESSORS_ONLN));
  if (reads_ % 16 == 0) collect_orphans(exited);

  auto total_of = [this](const ProcessKey& key, const Tracked& t) {
    auto in = inflight_.find(key);
    return t.spilled + t.slot_sum + (in == inflight_.end() ? 0 : in->second);
  };

  std::sort(changed_.begin(), changed_.end(), [](const ProcessKey& a, const ProcessKey& b) {
    return a.tgid != b.tgid ? a.tgid < b.tgid : a.start_ns < b.start_ns;
  });
  changed_.erase(std::unique(changed_.begin(), changed_.end()), changed_.end());

  const int procs_fd = bpf_map__fd(programs_.skel->maps.procs);
  for (auto& r : exited) {
    Tracked& t = tracked_[r.key];
    r.cpu_ns = total_of(r.key, t);
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
    r.cpu_ns = total_of(key, t);
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

  std::uint64_t misses = 0;
  for (bpf_program* p : programs_.programs) {
    bpf_prog_info info{};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0) {
      misses += info.recursion_misses;
    }
  }
  recursion_misses_ = misses;
  snap.dropped_total += misses;
  return snap;
}

BackendInfo BpfBackend::info() const {
  BackendInfo info;
  info.name = "bpf";
  info.attach_mode = programs_.mode;
  for (bpf_program* p : programs_.programs) info.programs.emplace_back(bpf_program__name(p));
  info.map_capacity = bpf_map__max_entries(programs_.skel->maps.procs);
  info.map_used = procs_used_;
  info.recursion_misses = recursion_misses_;
  return info;
}

}  // namespace tally::accounting
