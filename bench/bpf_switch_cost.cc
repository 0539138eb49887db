// bpf_switch_cost: what tally's sched_switch program costs per event, in the
// kernel, against reference programs attached to the same events.
//
// With run-time stats on (BPF_ENABLE_STATS), loads tally's programs (the
// real loader, tp_btf; once as shipped and once with run_queue_wait off)
// and the baselines of bpf/baseline, drives context
// switches with a pipe ping-pong between two threads pinned to one CPU, and
// reads each program's run_time_ns / run_cnt. Each program is attached alone
// for its turn, in rotating order, so none of them pays for the others'
// cache misses on the task structs (several programs on one tracepoint make
// the first one look slower than it is). The ratios compare turns of the same
// round, so slow drifts of the machine cancel out. Prints one JSON object.
//
//   bpf_switch_cost [--rounds N] [--round-trips N]
//   bpf_switch_cost --hold-empty    attaches only the empty program, prints
//                                   "ready" and keeps it attached until stdin
//                                   closes: the context-switch storm row's
//                                   floor for any sched_switch program
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <nlohmann/json.hpp>

#include "accounting/bpf_loader.h"
#include "cpu_account.skel.h"
#include "switch_baselines.skel.h"
#include "tally/fd.h"

namespace {

struct ProgStats {
  std::uint64_t run_time_ns = 0;
  std::uint64_t run_cnt = 0;
};

ProgStats read_stats(bpf_program* prog) {
  bpf_prog_info info{};
  __u32 len = sizeof info;
  bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
  return {info.run_time_ns, info.run_cnt};
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Two threads on one CPU bouncing a byte: every round trip is two switches.
void ping_pong(long round_trips) {
  int a[2], b[2];
  if (pipe(a) != 0 || pipe(b) != 0) return;
  std::thread partner([&] {
    pin(0);
    char c;
    for (long i = 0; i < round_trips; ++i) {
      if (read(a[0], &c, 1) != 1 || write(b[1], &c, 1) != 1) break;
    }
  });
  pin(0);
  char c = 'x';
  for (long i = 0; i < round_trips; ++i) {
    if (write(a[1], &c, 1) != 1 || read(b[0], &c, 1) != 1) break;
  }
  partner.join();
  for (int fd : {a[0], a[1], b[0], b[1]}) close(fd);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct BaselinesDeleter {
  void operator()(switch_baselines* s) const { switch_baselines__destroy(s); }
};

// The empty program attached, stats off, until the caller closes our stdin.
int hold_empty() {
  std::unique_ptr<switch_baselines, BaselinesDeleter> base(switch_baselines__open_and_load());
  if (!base) {
    std::fprintf(stderr, "bpf_switch_cost: load baseline programs failed\n");
    return 1;
  }
  bpf_link* link = bpf_program__attach(base->progs.switch_empty);
  if (!link) {
    std::fprintf(stderr, "bpf_switch_cost: attach empty: %s\n", std::strerror(errno));
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof buf) > 0) {
  }
  bpf_link__destroy(link);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && !std::strcmp(argv[1], "--hold-empty")) return hold_empty();
  int rounds = 7;
  long round_trips = 200000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--round-trips")) round_trips = std::atol(argv[i + 1]);
  }

  tally::UniqueFd stats(bpf_enable_stats(BPF_STATS_RUN_TIME));
  if (!stats.valid()) {
    std::fprintf(stderr, "bpf_switch_cost: enable BPF run-time stats: %s (needs root)\n",
                 std::strerror(errno));
    return 1;
  }
  tally::accounting::BpfLoadOptions options;
  options.mode = tally::accounting::AttachMode::tp_btf;
  auto tally_progs = tally::accounting::load_cpu_account(options);
  if (!tally_progs.ok()) {
    std::fprintf(stderr, "bpf_switch_cost: %s\n", tally_progs.error().message().c_str());
    return 1;
  }
  tally_progs->links.clear();  // attached turn by turn below
  // The same programs with [bpf] run_queue_wait = false: what charging the
  // run-queue wait costs.
  options.run_queue_wait = false;
  auto no_wait_progs = tally::accounting::load_cpu_account(options);
  if (!no_wait_progs.ok()) {
    std::fprintf(stderr, "bpf_switch_cost: %s\n", no_wait_progs.error().message().c_str());
    return 1;
  }
  no_wait_progs->links.clear();
  std::unique_ptr<switch_baselines, BaselinesDeleter> base(switch_baselines__open_and_load());
  if (!base) {
    std::fprintf(stderr, "bpf_switch_cost: load baseline programs failed\n");
    return 1;
  }

  struct Prog {
    const char* name;
    bpf_program* prog;
    std::vector<double> ns_per_event;
  };
  std::vector<Prog> progs = {
      {"tally", tally_progs->skel->progs.tally_switch_btf, {}},
      {"empty", base->progs.switch_empty, {}},
      {"ktime", base->progs.switch_ktime, {}},
      {"naive_hash", base->progs.switch_hash, {}},
      {"tally_no_wait", no_wait_progs->skel->progs.tally_switch_btf, {}},
  };
  std::vector<double> vs_ktime, vs_empty, hash_vs_ktime, no_wait_vs_ktime;
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t turn = 0; turn < progs.size(); ++turn) {
      Prog& p = progs[(turn + static_cast<std::size_t>(r)) % progs.size()];
      bpf_link* link = bpf_program__attach(p.prog);
      if (!link) {
        std::fprintf(stderr, "bpf_switch_cost: attach %s: %s\n", p.name, std::strerror(errno));
        return 1;
      }
      const ProgStats before = read_stats(p.prog);
      ping_pong(round_trips);
      const ProgStats after = read_stats(p.prog);
      bpf_link__destroy(link);
      const double cnt = static_cast<double>(after.run_cnt - before.run_cnt);
      p.ns_per_event.push_back(
          cnt > 0 ? static_cast<double>(after.run_time_ns - before.run_time_ns) / cnt : 0);
    }
    vs_ktime.push_back(progs[0].ns_per_event.back() / progs[2].ns_per_event.back());
    vs_empty.push_back(progs[0].ns_per_event.back() / progs[1].ns_per_event.back());
    hash_vs_ktime.push_back(progs[3].ns_per_event.back() / progs[2].ns_per_event.back());
    no_wait_vs_ktime.push_back(progs[4].ns_per_event.back() / progs[2].ns_per_event.back());
  }

  nlohmann::json out;
  out["rounds"] = rounds;
  out["switches_per_round"] = round_trips * 2;
  for (auto& p : progs) {
    auto v = p.ns_per_event;
    std::sort(v.begin(), v.end());
    out["ns_per_event"][p.name] = {{"median", median(v)}, {"min", v.front()}, {"max", v.back()}};
  }
  auto summarize = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return nlohmann::json{{"median", median(v)}, {"min", v.front()}, {"max", v.back()}};
  };
  out["ratio"]["tally_vs_ktime"] = summarize(vs_ktime);
  out["ratio"]["tally_vs_empty"] = summarize(vs_empty);
  out["ratio"]["naive_hash_vs_ktime"] = summarize(hash_vs_ktime);
  out["ratio"]["tally_no_wait_vs_ktime"] = summarize(no_wait_vs_ktime);
  std::puts(out.dump(2).c_str());
  return 0;
}
