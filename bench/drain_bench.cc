// drain_bench: how long tallyd's shipper takes to drain a backlog into a real
// tally-collector over loopback, and the rate the collector stores at.
//
// Fills a real outbox with --batches intervals of 1,000 samples (the
// realistic mix, every process active: a 24-hour backlog of a 1,000-process
// host at the 60 s default is 1,440 batches), starts tally-collector
// (durability full, its default) on a free loopback port, then runs the
// Shipper with the native format and gzip level 6, as tallyd does, and times
// from start until the outbox has nothing pending. Prints one JSON object.
//
//   drain_bench [--batches 1440] [--collector PATH] [--dir DIR]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "collector_process.h"
#include "realistic_mix.h"
#include "samples/compact_records.h"
#include "shipping/native_format.h"
#include "shipping/shipper.h"
#include "tally/queue/outbox.h"
#include "tally/time_util.h"

namespace {

namespace fs = std::filesystem;

}  // namespace

int main(int argc, char** argv) {
  long batches = 1440;
  std::string collector = (fs::path(argv[0]).parent_path().parent_path() / "userspace" /
                           "collector" / "tally-collector")
                              .string();
  fs::path dir = fs::path(TALLY_BENCH_DEFAULT_DIR) / "drain";
  int level = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batches")) batches = std::atol(argv[i + 1]);
    if (!std::strcmp(argv[i], "--collector")) collector = argv[i + 1];
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--level")) level = std::atoi(argv[i + 1]);
  }
  fs::remove_all(dir);
  fs::create_directories(dir);

  tally::queue::OutboxOptions options;
  options.path = dir / "outbox.db";
  options.sinks = {"collector"};
  options.cap_bytes = 4ull << 30;
  options.compress = false;  // as tallyd opens it
  auto outbox = tally::queue::Outbox::open(options, tally::realtime_ns());
  if (!outbox.ok()) {
    std::fprintf(stderr, "drain_bench: %s\n", outbox.error().message().c_str());
    return 1;
  }
  // 991 processes + 8 that exit in the interval + the host line.
  tally::bench::RealisticMix mix({991, false, true, 60'000'000'000ULL, 7});
  std::uint64_t samples = 0;
  // Stored as tallyd stores them: compact records and their dictionary.
  tally::samples::CompactEncoder encoder((*outbox)->first_unused_dictionary_key());
  for (long b = 0; b < batches; ++b) {
    const auto compact = encoder.encode(mix.next_interval_samples());
    samples += compact.records.size();
    if (auto r = (*outbox)->append(compact.records, tally::realtime_ns(), compact.dictionary);
        !r.ok()) {
      std::fprintf(stderr, "drain_bench: %s\n", r.error().message().c_str());
      return 1;
    }
  }
  auto before = (*outbox)->stats(tally::realtime_ns());
  if (!before.ok()) return 1;

  tally::bench::Collector c;
  if (!tally::bench::start_collector(c, collector, (dir / "collector.db").string())) {
    std::fprintf(stderr, "drain_bench: could not start %s\n", collector.c_str());
    return 1;
  }
  tally::shipping::ShipperOptions so;
  so.sink = "collector";
  so.url = "http://" + c.listen + "/v1/batches";
  so.agent_id = (*outbox)->agent_id();
  so.gzip_level = level;
  tally::shipping::Shipper shipper(
      **outbox, so,
      std::make_unique<tally::shipping::NativeFormat>((*outbox)->agent_id(), "web-1"));
  const auto t0 = std::chrono::steady_clock::now();
  shipper.start();
  shipper.notify();
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto st = (*outbox)->stats(tally::realtime_ns());
    if (st.ok() && st->pending_batches == 0) break;
    if (std::chrono::steady_clock::now() - t0 > std::chrono::minutes(15)) {
      std::fprintf(stderr, "drain_bench: not drained after 15 minutes\n");
      return 1;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  shipper.stop();
  const auto status = shipper.status();

  nlohmann::json out;
  out["batches"] = batches;
  out["samples"] = samples;
  out["outbox_payload_bytes"] = before->pending_bytes;
  out["seconds"] = seconds;
  out["samples_per_second"] = static_cast<double>(samples) / seconds;
  out["extrapolated_24h_seconds"] = seconds * 1440.0 / static_cast<double>(batches);
  out["bytes_sent"] = status.bytes_sent;
  out["bytes_encoded"] = status.bytes_encoded;
  out["requests_failed"] = status.requests_failed;
  std::puts(out.dump(2).c_str());
  fs::remove_all(dir);
  return status.samples_sent == samples ? 0 : 1;
}
