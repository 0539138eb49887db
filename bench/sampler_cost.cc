// sampler_cost: the CPU tallyd's sampling thread spends per interval, for
// the bpf backend and the procfs backend, on the same live tasks.
//
// For each task count it starts bench/task_farm (tasks in processes of two
// threads, 1% of the tasks busy: they wake every 100 ms to burn 100 us, so
// they are active in every interval), then alternates the two backends
// interval by interval (ABBA order), each with its own Sampler and Outbox,
// exactly as tallyd chains them: Sampler::sample() (read the backend, deltas,
// comm/cmdline/cgroup from the per-incarnation cache, RSS), then the compact
// records (CompactEncoder), then Outbox::append() (a durable SQLite commit). What is timed is the
// calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user and kernel, so the
// /proc reads count, and the fsync wait does not); backend.read() alone is
// timed too. Medians over the rounds, min/max as the spread, and the ratio
// procfs/bpf per round. Prints one JSON object.
//
//   sampler_cost [--tasks 100,1000,10000] [--rounds 7] [--interval-ms 1000]
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounting/bpf_backend.h"
#include "accounting/procfs_backend.h"
#include "accounting/sampler.h"
#include "bench_stats.h"
#include "samples/compact_records.h"
#include "tally/queue/outbox.h"
#include "tally/time_util.h"
#include "task_farm_run.h"

namespace {

namespace fs = std::filesystem;
using namespace tally;
using namespace tally::accounting;

std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Times read() of the backend it wraps, so the report can tell the cost of
// reading counters from the cost of naming and storing the samples.
class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  Result<Snapshot> read() override {
    const std::uint64_t t0 = thread_cpu_ns();
    auto snap = inner_->read();
    last_read_ns = thread_cpu_ns() - t0;
    return snap;
  }
  BackendInfo info() const override { return inner_->info(); }
  std::uint64_t last_read_ns = 0;

 private:
  std::unique_ptr<Backend> inner_;
};

struct Lane {
  std::string name;
  std::unique_ptr<TimedBackend> backend;
  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<queue::Outbox> outbox;
  std::unique_ptr<samples::CompactEncoder> encoder;  // made once the outbox is open
  std::vector<double> total_us, read_us, samples;
};

Result<std::unique_ptr<queue::Outbox>> fresh_outbox(const fs::path& dir, const std::string& name) {
  const fs::path db = dir / (name + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
  // And the lock file's witness, or the new outbox would declare the last
  // run's agent lost (queue/src/outbox_lock.h).
  fs::remove(db.parent_path() / ("." + db.filename().string() + ".lock"));
  queue::OutboxOptions options;
  options.path = db;
  options.sinks = {"collector"};
  options.compress = false;  // as tallyd opens it
  return queue::Outbox::open(options, realtime_ns());
}

// One interval of one lane; false on error (printed).
bool run_interval(Lane& lane, bool record) {
  const std::uint64_t t0 = thread_cpu_ns();
  auto samples = lane.sampler->sample();
  if (!samples.ok()) {
    std::fprintf(stderr, "sampler_cost: %s: %s\n", lane.name.c_str(),
                 samples.error().message().c_str());
    return false;
  }
  if (!lane.encoder) {
    lane.encoder =
        std::make_unique<samples::CompactEncoder>(lane.outbox->first_unused_dictionary_key());
  }
  const samples::CompactInterval compact = lane.encoder->encode(*samples);
  auto appended = lane.outbox->append(compact.records, realtime_ns(), compact.dictionary);
  const std::uint64_t t1 = thread_cpu_ns();
  if (!appended.ok()) {
    std::fprintf(stderr, "sampler_cost: %s\n", appended.error().message().c_str());
    return false;
  }
  // A shipper that keeps up: ack outside the timed region.
  (void)lane.outbox->ack("collector", appended->last_seq);
  if (record) {
    lane.total_us.push_back(static_cast<double>(t1 - t0) / 1e3);
    lane.read_us.push_back(static_cast<double>(lane.backend->last_read_ns) / 1e3);
    lane.samples.push_back(static_cast<double>(samples->processes.size()));
  }
  return true;
}

std::vector<long> parse_list(const char* s) {
  std::vector<long> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atol(p));
    p = std::strchr(p, ',');
    if (!p) break;
    ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> task_counts = {100, 1000, 10000};
  int rounds = 7;
  long interval_ms = 1000;
  std::string farm = (fs::path(argv[0]).parent_path() / "task_farm").string();
  fs::path dir = fs::temp_directory_path() / "tally-sampler-cost";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tasks")) task_counts = parse_list(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rounds")) rounds = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--interval-ms")) interval_ms = std::atol(argv[i + 1]);
    if (!std::strcmp(argv[i], "--farm")) farm = argv[i + 1];
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  fs::create_directories(dir);

  nlohmann::json out;
  out["rounds"] = rounds;
  out["interval_ms"] = interval_ms;
  for (long tasks : task_counts) {
    const long busy = std::max(1L, tasks / 100);
    auto run = bench::TaskFarmRun::start(farm, tasks, 2, busy);
    if (!run.ok()) {
      std::fprintf(stderr, "sampler_cost: %s\n", run.error().message().c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));

    Lane bpf{"bpf", nullptr, nullptr, nullptr, nullptr, {}, {}, {}};
    Lane procfs{"procfs", nullptr, nullptr, nullptr, nullptr, {}, {}, {}};
    auto bpf_backend = BpfBackend::create(BpfLoadOptions{});
    if (!bpf_backend.ok()) {
      std::fprintf(stderr, "sampler_cost: %s\n", bpf_backend.error().message().c_str());
      return 1;
    }
    bpf.backend = std::make_unique<TimedBackend>(std::move(bpf_backend).value());
    procfs.backend = std::make_unique<TimedBackend>(std::make_unique<ProcfsBackend>());
    for (Lane* lane : {&bpf, &procfs}) {
      lane->sampler =
          std::make_unique<Sampler>(*lane->backend, SamplerOptions{"bench", false}, monotonic_ns());
      auto outbox = fresh_outbox(dir, lane->name);
      if (!outbox.ok()) {
        std::fprintf(stderr, "sampler_cost: %s\n", outbox.error().message().c_str());
        return 1;
      }
      lane->outbox = std::move(outbox).value();
    }
    // Two warm-up intervals each: the first names every active process.
    for (int r = 0; r < rounds + 2; ++r) {
      std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
      const bool record = r >= 2;
      Lane* first = r % 2 == 0 ? &bpf : &procfs;
      Lane* second = first == &bpf ? &procfs : &bpf;
      if (!run_interval(*first, record) || !run_interval(*second, record)) return 1;
    }
    std::vector<double> ratio;
    for (std::size_t i = 0; i < bpf.total_us.size(); ++i) {
      ratio.push_back(procfs.total_us[i] / std::max(bpf.total_us[i], 1.0));
    }
    nlohmann::json row;
    row["tasks"] = tasks;
    row["processes"] = (tasks + 1) / 2;
    row["busy_tasks"] = busy;
    for (Lane* lane : {&bpf, &procfs}) {
      row[lane->name] = {{"interval_cpu_us", bench::summary(lane->total_us)},
                         {"read_cpu_us", bench::summary(lane->read_us)},
                         {"samples", bench::summary(lane->samples)}};
    }
    row["procfs_over_bpf"] = bench::summary(ratio);
    out["by_tasks"].push_back(row);
    std::fprintf(stderr, "sampler_cost: %ld tasks: bpf %.0f us, procfs %.0f us per interval\n",
                 tasks, bench::median(bpf.total_us), bench::median(procfs.total_us));
  }
  std::puts(out.dump(2).c_str());
  return 0;
}
