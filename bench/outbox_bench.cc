// The outbox's hot paths against the disk's floor: one small write + fsync.
//
// Files go to $TALLY_BENCH_DIR, or to a directory in the build tree (not
// /tmp, which may be tmpfs: the point is the real disk's fsync).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "realistic_mix.h"
#include "tally/queue/outbox.h"

namespace {

namespace fs = std::filesystem;
using tally::queue::Outbox;
using tally::queue::OutboxOptions;

constexpr std::uint64_t kNow = 1'704'067'200ULL * 1'000'000'000ULL;

fs::path bench_dir() {
  const char* env = std::getenv("TALLY_BENCH_DIR");
  fs::path dir = env != nullptr && *env != '\0' ? fs::path(env) : fs::path(TALLY_BENCH_DEFAULT_DIR);
  fs::create_directories(dir);
  return dir;
}

// A fresh outbox file per benchmark run.
std::unique_ptr<Outbox> fresh_outbox(benchmark::State& state, const std::string& name) {
  const fs::path db = bench_dir() / (name + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
  OutboxOptions options;
  options.path = db;
  options.sinks = {"collector"};
  auto outbox = Outbox::open(options, kNow);
  if (!outbox) {
    state.SkipWithError(outbox.error().message().c_str());
    return nullptr;
  }
  return std::move(*outbox);
}

// One 1,000-sample interval as tallyd commits it: 991 live processes, 8 that
// exited in the interval and the host line (bench/realistic_mix.h).
std::vector<std::string> interval_samples() {
  static const std::vector<std::string> samples =
      tally::bench::RealisticMix({991, false, true, 60'000'000'000ULL, 42}).next_interval();
  return samples;
}

// Rewrites `buf` at offset 0 of a file and fsyncs it, once per iteration.
void write_fsync_loop(benchmark::State& state, const char* name, const std::string& buf) {
  const fs::path file = bench_dir() / name;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  for (auto _ : state) {
    if (::pwrite(fd, buf.data(), buf.size(), 0) != static_cast<ssize_t>(buf.size()) ||
        ::fsync(fd) != 0) {
      state.SkipWithError("write/fsync failed");
      break;
    }
  }
  ::close(fd);
  fs::remove(file);
}

// The floor: a small write made durable.
void BM_FsyncFloor(benchmark::State& state) {
  write_fsync_loop(state, "fsync-floor.bin", std::string(256, 's'));
}
BENCHMARK(BM_FsyncFloor)->UseRealTime();

// Not a floor the outbox can reach, but the physics under it: the bytes of
// one 1,000-sample interval written with one pwrite and made durable.
void BM_WriteFsyncInterval(benchmark::State& state) {
  std::string buf;
  for (const auto& s : interval_samples()) buf += s + "\n";
  write_fsync_loop(state, "fsync-interval.bin", buf);
}
BENCHMARK(BM_WriteFsyncInterval)->UseRealTime();

// Appends `samples` once per iteration. A healthy agent's shipper keeps up:
// each batch is acked outside the timed region so the file stays at its
// steady-state size.
void append_loop(benchmark::State& state, const std::string& name,
                 const std::vector<std::string>& samples) {
  auto outbox = fresh_outbox(state, name);
  if (!outbox) return;
  for (auto _ : state) {
    auto r = outbox->append(samples, kNow);
    if (!r) {
      state.SkipWithError(r.error().message().c_str());
      break;
    }
    state.PauseTiming();
    if (!outbox->ack("collector", r->last_seq)) state.SkipWithError("ack failed");
    state.ResumeTiming();
  }
}

void BM_Append1000(benchmark::State& state) {
  const auto samples = interval_samples();
  std::uint64_t bytes = 0;
  for (const auto& s : samples) bytes += s.size() + 1;
  append_loop(state, "append", samples);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
  state.counters["sample_bytes"] = static_cast<double>(bytes) / 1000.0;
}
BENCHMARK(BM_Append1000)->UseRealTime();

// The same path with one sample: what a commit costs the outbox before the
// samples' own bytes count (transaction, batch and delivery rows, counters,
// WAL frames, the fsync).
void BM_AppendOne(benchmark::State& state) {
  append_loop(state, "append-one", {interval_samples().front()});
}
BENCHMARK(BM_AppendOne)->UseRealTime();

void BM_FormAndRead(benchmark::State& state) {
  auto outbox = fresh_outbox(state, "read");
  if (!outbox) return;
  if (!outbox->append(interval_samples(), kNow)) {
    state.SkipWithError("append failed");
    return;
  }
  for (auto _ : state) {
    auto batch = outbox->next_ready("collector", kNow);
    if (!batch || !batch->has_value()) {
      state.SkipWithError("next_ready found nothing");
      break;
    }
    benchmark::DoNotOptimize((*batch)->payload.data());
  }
}
BENCHMARK(BM_FormAndRead)->UseRealTime();

void BM_Ack(benchmark::State& state) {
  auto outbox = fresh_outbox(state, "ack");
  if (!outbox) return;
  const auto samples = interval_samples();
  for (auto _ : state) {
    state.PauseTiming();
    auto r = outbox->append(samples, kNow);
    state.ResumeTiming();
    if (!r || !outbox->ack("collector", r->last_seq)) {
      state.SkipWithError("append or ack failed");
      break;
    }
  }
}
BENCHMARK(BM_Ack)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
