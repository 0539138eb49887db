// The outbox's hot paths against the disk's floor: one small write + fsync.
//
// Files go to $TALLY_BENCH_DIR, or to a directory in the build tree (not
// /tmp, which may be tmpfs: the point is the real disk's fsync).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "realistic_mix.h"
#include "samples/compact_records.h"
#include "samples/json_line.h"
#include "tally/queue/outbox.h"
#include "tally/sqlite.h"

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
std::unique_ptr<Outbox> fresh_outbox(benchmark::State& state, const std::string& name,
                                     bool compress = true) {
  const fs::path db = bench_dir() / (name + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
  // And the lock file's witness, or the new outbox would declare the last
  // run's agent lost (queue/src/outbox_lock.h).
  fs::remove(db.parent_path() / ("." + db.filename().string() + ".lock"));
  OutboxOptions options;
  options.path = db;
  options.sinks = {"collector"};
  options.compress = compress;
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
                 const std::vector<std::string>& samples, bool compress) {
  auto outbox = fresh_outbox(state, name, compress);
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

// The form tallyd stored before compact records: the interval's JSON lines,
// zstd-compressed by the outbox.
void BM_Append1000Json(benchmark::State& state) {
  const auto samples = interval_samples();
  std::uint64_t bytes = 0;
  for (const auto& s : samples) bytes += s.size() + 1;
  append_loop(state, "append-json", samples, true);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
  state.counters["sample_bytes"] = static_cast<double>(bytes) / 1000.0;
}
BENCHMARK(BM_Append1000Json)->UseRealTime();

// The same path with one sample: what a commit costs the outbox before the
// samples' own bytes count (transaction, batch and delivery rows, counters,
// WAL frames, the fsync).
void BM_AppendOne(benchmark::State& state) {
  append_loop(state, "append-one", {interval_samples().front()}, false);
}
BENCHMARK(BM_AppendOne)->UseRealTime();

// The floor of any outbox kept in SQLite: one prepared INSERT of a blob of
// `state.range(0)` random (incompressible) bytes into a one-table database,
// committed with the outbox's settings (WAL, synchronous=FULL), and nothing
// else. Each row is deleted again outside the timed region, lazily, as an ack
// is, so the file keeps its steady-state size.
void sqlite_commit_loop(benchmark::State& state, std::size_t bytes) {
  namespace sql = tally::sql;
  const fs::path db_path = bench_dir() / "sqlite-commit.db";
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db_path.string() + suffix);
  auto db = sql::Database::open(db_path, sql::Database::Mode::read_write_create);
  if (!db) {
    state.SkipWithError(db.error().message().c_str());
    return;
  }
  if (!db->exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                "PRAGMA secure_delete = FAST; "
                "CREATE TABLE b(seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")) {
    state.SkipWithError("set up failed");
    return;
  }
  auto begin = sql::Statement::prepare(*db, "BEGIN IMMEDIATE");
  auto insert = sql::Statement::prepare(*db, "INSERT INTO b(payload) VALUES(?1)");
  auto commit = sql::Statement::prepare(*db, "COMMIT");
  auto remove = sql::Statement::prepare(*db, "DELETE FROM b");
  if (!begin || !insert || !commit || !remove) {
    state.SkipWithError("prepare failed");
    return;
  }
  std::string blob(bytes, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (char& c : blob) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (auto _ : state) {
    const bool ok =
        begin->use()->run() && insert->use()->bind_blob(1, blob).run() && commit->use()->run();
    state.PauseTiming();
    if (!ok || !db->exec("PRAGMA synchronous = NORMAL") || !remove->use()->run() ||
        !db->exec("PRAGMA synchronous = FULL")) {
      state.SkipWithError("commit failed");
    }
    state.ResumeTiming();
  }
}
void BM_SqliteCommit(benchmark::State& state) {
  sqlite_commit_loop(state, static_cast<std::size_t>(state.range(0)));
}
// 100 bytes; 16 KiB; 48 KiB, about what a zstd-compressed JSON interval
// stores.
BENCHMARK(BM_SqliteCommit)->Arg(100)->Arg(16 << 10)->Arg(48 << 10)->UseRealTime();

// What tallyd commits (userspace/samples/compact_records.h): 1,000-sample
// intervals as compact records, with the dictionary entries each adds (its
// header, and the names of the processes that started or exec'd in it),
// into an outbox opened as tallyd opens it (no zstd). The first interval,
// which names every process, is appended before timing; the timed appends
// then go through the 20 intervals that follow it, over and over, each
// encoded outside the timed region by one encoder, as tallyd's store thread
// does. Those 21 intervals are first decoded back and must give tallyd's
// JSON lines byte for byte.
struct CompactStream {
  std::vector<tally::samples::IntervalSamples> intervals;  // [0] names everyone
  std::string error;
};

const CompactStream& compact_stream() {
  static const CompactStream stream = [] {
    CompactStream out;
    tally::bench::RealisticMix mix({991, false, true, 60'000'000'000ULL, 42});
    tally::samples::CompactEncoder encoder(1);
    std::map<std::uint64_t, std::string> dictionary;
    tally::samples::CompactDecoder decoder(
        [&](std::uint64_t key) -> tally::Result<std::optional<std::string>> {
          auto it = dictionary.find(key);
          if (it == dictionary.end()) return std::optional<std::string>();
          return std::optional<std::string>(it->second);
        });
    for (int i = 0; i <= 20; ++i) {
      auto interval = mix.next_interval_samples();
      auto compact = encoder.encode(interval);
      for (const auto& [key, value] : compact.dictionary.added) dictionary[key] = value;
      const std::vector<std::string_view> records(compact.records.begin(), compact.records.end());
      auto decoded = decoder.decode(records);
      if (!decoded) {
        out.error = decoded.error().message();
        return out;
      }
      std::vector<std::string> lines;
      for (const auto& sample : *decoded) lines.push_back(tally::samples::to_json_line(sample));
      if (lines != tally::samples::json_lines(interval)) {
        out.error = fmt::format("interval {} does not decode to the lines it was made from", i);
        return out;
      }
      out.intervals.push_back(std::move(interval));
    }
    return out;
  }();
  return stream;
}

void BM_Append1000(benchmark::State& state) {
  const CompactStream& stream = compact_stream();
  if (!stream.error.empty()) {
    state.SkipWithError(stream.error.c_str());
    return;
  }
  auto outbox = fresh_outbox(state, "append", false);
  if (!outbox) return;
  tally::samples::CompactEncoder encoder(outbox->first_unused_dictionary_key());
  const auto first = encoder.encode(stream.intervals[0]);
  if (auto r = outbox->append(first.records, kNow, first.dictionary);
      !r || !outbox->ack("collector", r->last_seq)) {
    state.SkipWithError(r ? "first ack failed" : r.error().message().c_str());
    return;
  }
  std::size_t next = 1;
  auto interval = encoder.encode(stream.intervals[next]);
  std::uint64_t samples = 0, bytes = 0;
  for (auto _ : state) {
    auto r = outbox->append(interval.records, kNow, interval.dictionary);
    if (!r) {
      state.SkipWithError(r.error().message().c_str());
      break;
    }
    state.PauseTiming();
    samples += interval.records.size();
    for (const auto& record : interval.records) bytes += record.size() + 1;
    for (const auto& [key, value] : interval.dictionary.added) bytes += value.size() + 4;
    if (!outbox->ack("collector", r->last_seq)) state.SkipWithError("ack failed");
    next = next % (stream.intervals.size() - 1) + 1;
    interval = encoder.encode(stream.intervals[next]);
    state.ResumeTiming();
  }
  if (samples > 0) {
    state.counters["stored_bytes_per_sample"] =
        static_cast<double>(bytes) / static_cast<double>(samples);
  }
}
BENCHMARK(BM_Append1000)->UseRealTime();

// The floor BM_Append1000 is held to: a bare SQLite commit (as
// BM_SqliteCommit) of as many bytes as one of its appends stores, records
// and dictionary entries, averaged over the intervals it goes through.
void BM_SqliteCommitAppendBytes(benchmark::State& state) {
  const CompactStream& stream = compact_stream();
  if (!stream.error.empty()) {
    state.SkipWithError(stream.error.c_str());
    return;
  }
  tally::samples::CompactEncoder encoder(1);
  encoder.encode(stream.intervals[0]);
  std::uint64_t bytes = 0;
  for (std::size_t i = 1; i < stream.intervals.size(); ++i) {
    const auto interval = encoder.encode(stream.intervals[i]);
    for (const auto& record : interval.records) bytes += record.size() + 1;
    for (const auto& [key, value] : interval.dictionary.added) bytes += value.size() + 4;
  }
  const auto per_append = static_cast<std::size_t>(bytes / (stream.intervals.size() - 1));
  state.counters["bytes"] = static_cast<double>(per_append);
  sqlite_commit_loop(state, per_append);
}
BENCHMARK(BM_SqliteCommitAppendBytes)->UseRealTime();

// The sampler's side of each form: turning one interval into what append()
// takes. CPU work only, no disk.
void BM_EncodeJson1000(benchmark::State& state) {
  tally::bench::RealisticMix mix({991, false, true, 60'000'000'000ULL, 42});
  const auto interval = mix.next_interval_samples();
  for (auto _ : state) benchmark::DoNotOptimize(tally::samples::json_lines(interval));
}
BENCHMARK(BM_EncodeJson1000);

void BM_EncodeCompact1000(benchmark::State& state) {
  tally::bench::RealisticMix mix({991, false, true, 60'000'000'000ULL, 42});
  const auto interval = mix.next_interval_samples();
  tally::samples::CompactEncoder encoder(1);
  benchmark::DoNotOptimize(encoder.encode(interval));
  // Steady state: the same processes again; the interval's exited ones are
  // new to the encoder each time, as short-lived jobs are.
  for (auto _ : state) benchmark::DoNotOptimize(encoder.encode(interval));
}
BENCHMARK(BM_EncodeCompact1000);

void BM_FormAndRead(benchmark::State& state) {
  auto outbox = fresh_outbox(state, "read");
  if (!outbox) return;
  if (!outbox->append(interval_samples(), kNow)) {
    state.SkipWithError("append failed");
    return;
  }
  for (auto _ : state) {
    auto batch = outbox->next_ready("collector");
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
