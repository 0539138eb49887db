// A realistic stream of tallyd intervals, for the outbox and wire benchmarks.
//
// The population is this machine's real processes (comm, cmdline and cgroup
// read from /proc, as tallyd names them) topped up to `processes` with
// synthetic ones drawn from what a busy server runs: kernel threads, systemd
// services, an nginx + php-fpm + PostgreSQL stack, a JVM, gunicorn workers,
// and Kubernetes containers whose cgroup paths carry pod UIDs and 64-hex
// container ids. Each interval, each process is active with its class's
// probability (an idle getty rarely, a worker nearly always), its CPU time is
// log-normal and its RSS drifts; a few short-lived processes (cron jobs,
// shells) start and exit, each with its own pid and command line. The lines
// are made by tallyd's own to_json_line, so they are byte for byte what
// tallyd commits. Deterministic for a given seed and machine.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "accounting/sampler.h"

namespace tally::bench {

struct MixOptions {
  std::size_t processes = 1000;  // population size, real ones included
  bool include_machine = true;   // start from this machine's real processes
  // Every process active in every interval (a fixed number of samples per
  // interval: `processes` + exits + the host line), instead of sampling
  // activity per class.
  bool all_active = false;
  std::uint64_t interval_ns = 60'000'000'000ULL;
  std::uint32_t seed = 42;
};

class RealisticMix {
 public:
  explicit RealisticMix(MixOptions options);

  // The JSON lines of the next interval: processes by pid, host line last.
  std::vector<std::string> next_interval();
  // The same interval before it is turned into lines.
  samples::IntervalSamples next_interval_samples();

  std::size_t real_processes() const { return real_; }

 private:
  struct Proc {
    samples::ProcessSample s;
    double active_p = 1.0;
    double cpu_mu = 16;  // log-normal parameters of cpu_ns per interval
  };
  void add(const std::string& comm, const std::string& cmdline, const std::string& cgroup,
           double active_p, double cpu_mu);
  std::string hex(std::size_t n);

  MixOptions options_;
  std::mt19937_64 rng_;
  std::vector<Proc> procs_;
  std::uint32_t next_pid_ = 1000;
  // Two days before now, whole seconds plus a fixed fraction: recent enough
  // that the collector's retention (14 days) keeps what a benchmark stores.
  std::uint64_t ts_ns_ = 0;
  std::uint64_t boot_epoch_ns_ = 0;
  std::size_t real_ = 0;
};

}  // namespace tally::bench
