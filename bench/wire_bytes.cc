// wire_bytes: bytes per sample on the wire for the native format after
// gzip, on a realistic mix (bench/realistic_mix.h: this machine's processes
// plus a synthetic server population, names repeating across intervals).
//
// Encodes each interval as one batch, exactly as the shipper does
// (NativeFormat::encode, then gzip at the agent's default level 6), and
// reports compressed bytes per sample, per interval and overall, for
// protocol version 2 in steady state (what tallyd sends), for version 2 with
// every name spelled out, and for the columnar prototype of
// bench/wire_columns.h. Prints one JSON object.
//
//   wire_bytes [--intervals 10] [--processes 1000] [--level 6]
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "realistic_mix.h"
#include "samples/json_line.h"
#include "shipping/gzip.h"
#include "shipping/native_format.h"
#include "shipping/sink_format.h"
#include "wire_columns.h"

int main(int argc, char** argv) {
  int intervals = 10;
  std::size_t processes = 1000;
  int level = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--intervals")) intervals = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--processes")) processes = std::strtoul(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--level")) level = std::atoi(argv[i + 1]);
  }
  tally::bench::RealisticMix mix({processes, true, false, 60'000'000'000ULL, 42});
  // "2": what tallyd sends in steady state: the same NativeFormat across
  // the intervals, told after each batch that the collector acknowledged it,
  // so names go out once per process. "2, names in full": a fresh format
  // per batch, i.e. every name spelled out, as right after a start or a
  // collector that lost its names (and as protocol version 1 sent always).
  const std::vector<std::string> versions = {"2", "2, names in full", "columnar prototype"};
  const std::string agent = "3f1c2a9e-4b7d-4c1e-9a55-0d3e6f1b2c4d";
  tally::shipping::NativeFormat steady(agent, "web-1");
  struct Totals {
    std::uint64_t raw = 0, gz = 0, encoded = 0, samples = 0;
    std::vector<double> per_batch;
  };
  std::vector<Totals> totals(versions.size());
  std::uint64_t line_bytes = 0, line_count = 0;
  for (int t = 0; t < intervals; ++t) {
    const tally::samples::IntervalSamples interval = mix.next_interval_samples();
    const std::vector<std::string> lines = tally::samples::json_lines(interval);
    std::vector<tally::samples::Sample> samples(interval.processes.begin(),
                                                interval.processes.end());
    samples.emplace_back(interval.host);
    tally::queue::Batch batch;
    batch.seq = static_cast<std::uint64_t>(t + 1);
    for (const auto& l : lines) {
      if (!batch.payload.empty()) batch.payload += '\n';
      batch.payload += l;
      line_bytes += l.size();
    }
    line_count += lines.size();
    batch.sample_count = static_cast<std::uint32_t>(lines.size());
    const auto views = tally::shipping::split_lines(batch.payload);
    const auto n = static_cast<std::uint32_t>(views.size());
    for (std::size_t v = 0; v < versions.size(); ++v) {
      tally::shipping::NativeFormat fresh(agent, "web-1");
      auto body = v == 0   ? steady.encode(batch, samples, 0, n)
                  : v == 1 ? fresh.encode(batch, samples, 0, n)
                           : tally::Result<std::string>(
                                 tally::bench::encode_columns(agent, "web-1", batch.seq, views));
      if (v == 0) steady.acknowledged(samples, 0, n);
      if (!body.ok()) {
        std::fprintf(stderr, "wire_bytes: %s\n", body.error().message().c_str());
        return 1;
      }
      auto gz = tally::shipping::gzip_compress(*body, level);
      if (!gz.ok()) return 1;
      totals[v].encoded += body->size();
      totals[v].gz += gz->size();
      totals[v].samples += views.size();
      totals[v].per_batch.push_back(static_cast<double>(gz->size()) /
                                    static_cast<double>(views.size()));
    }
  }
  nlohmann::json out;
  out["intervals"] = intervals;
  out["population"] = processes;
  out["real_processes"] = mix.real_processes();
  out["samples_per_interval"] = static_cast<double>(line_count) / intervals;
  out["json_line_bytes"] = static_cast<double>(line_bytes) / static_cast<double>(line_count);
  out["gzip_level"] = level;
  for (std::size_t v = 0; v < versions.size(); ++v) {
    const Totals& t = totals[v];
    out["versions"][versions[v]] = {
        {"encoded_bytes_per_sample",
         static_cast<double>(t.encoded) / static_cast<double>(t.samples)},
        {"gzip_bytes_per_sample", static_cast<double>(t.gz) / static_cast<double>(t.samples)},
        {"per_batch", tally::bench::summary(t.per_batch)}};
  }
  std::puts(out.dump(2).c_str());
  return 0;
}
