// What a sink format costs the shipper per 1,000-sample batch, from the
// compact records the outbox holds to the request body (before gzip), for
// influx and otlp, both ways tally has done it:
//   BM_*ViaJsonLines: records -> JSON lines -> each line parsed again ->
//     body. How the shipper worked before samples became a component of
//     their own (docs/BENCHMARKS.md, "Sink encoding").
//   BM_*FromSamples: records -> sample structs -> body. How it works now.
// Both run in the same process on the same batch, so their ratio holds on
// any machine:
//   build/bench/sink_encode_bench --benchmark_repetitions=5
// Beside them, what remote write costs on the same batch (protobuf, with the
// counters it keeps), and what processes = "top" costs or saves each format
// (the rollups: a sort of the interval, groups by cgroup and comm).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "realistic_mix.h"
#include "samples/compact_records.h"
#include "samples/json_line.h"
#include "samples/json_line_reader.h"
#include "shipping/influx_format.h"
#include "shipping/otlp_format.h"
#include "shipping/remote_write_format.h"
#include "shipping/snappy_block.h"

namespace {

using tally::samples::Sample;

// One steady-state interval of the realistic mix as the outbox stores it:
// its compact records, and the dictionary they refer to.
struct StoredBatch {
  tally::queue::Batch batch;
  std::vector<std::string> records;
  std::map<std::uint64_t, std::string> dictionary;
};

const StoredBatch& stored_batch() {
  static const StoredBatch stored = [] {
    StoredBatch out;
    tally::bench::RealisticMix mix({991, false, true, 60'000'000'000ULL, 42});
    tally::samples::CompactEncoder encoder(1);
    for (int i = 0; i < 2; ++i) {  // the second interval: names known, as most are
      auto compact = encoder.encode(mix.next_interval_samples());
      for (const auto& [key, value] : compact.dictionary.added) out.dictionary[key] = value;
      out.records = std::move(compact.records);
    }
    out.batch.seq = 1;
    out.batch.sample_count = static_cast<std::uint32_t>(out.records.size());
    return out;
  }();
  return stored;
}

tally::samples::CompactDecoder decoder_of(const StoredBatch& stored) {
  return tally::samples::CompactDecoder(
      [&stored](std::uint64_t key) -> tally::Result<std::optional<std::string>> {
        auto it = stored.dictionary.find(key);
        if (it == stored.dictionary.end()) return std::optional<std::string>();
        return std::optional<std::string>(it->second);
      });
}

// The old path: the decoder gave JSON lines, and the format parsed each.
std::vector<Sample> via_json_lines(tally::samples::CompactDecoder& decoder,
                                   const std::vector<std::string_view>& records) {
  auto decoded = decoder.decode(records);
  std::vector<std::string> lines;
  lines.reserve(decoded->size());
  for (const Sample& s : *decoded) lines.push_back(tally::samples::to_json_line(s));
  std::vector<Sample> parsed;
  parsed.reserve(lines.size());
  for (const auto& line : lines) parsed.push_back(*tally::samples::parse_json_line(line));
  return parsed;
}

template <typename Format>
void run(benchmark::State& state, const Format& format, bool via_lines) {
  const StoredBatch& stored = stored_batch();
  const std::vector<std::string_view> records(stored.records.begin(), stored.records.end());
  auto decoder = decoder_of(stored);
  const auto n = static_cast<std::uint32_t>(records.size());
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::vector<Sample> samples =
        via_lines ? via_json_lines(decoder, records) : std::move(*decoder.decode(records));
    auto body = format.encode(stored.batch, samples, 0, n);
    if (!body) {
      state.SkipWithError(body.error().message().c_str());
      return;
    }
    bytes = body->size();
    benchmark::DoNotOptimize(body);
  }
  state.counters["samples"] = n;
  state.counters["body_bytes"] = static_cast<double>(bytes);
}

tally::shipping::RollupOptions top20() {
  tally::shipping::RollupOptions o;
  o.top = true;
  o.top_n = 20;
  return o;
}

tally::shipping::OtlpOptions otlp_options() {
  tally::shipping::OtlpOptions o;
  o.host_id = "3f1c2a9e4b7d4c1e9a550d3e6f1b2c4d";
  o.scope_version = "bench";
  return o;
}

void BM_InfluxViaJsonLines1000(benchmark::State& state) {
  run(state, tally::shipping::InfluxFormat({}), true);
}
void BM_InfluxFromSamples1000(benchmark::State& state) {
  run(state, tally::shipping::InfluxFormat({}), false);
}
void BM_OtlpViaJsonLines1000(benchmark::State& state) {
  run(state, tally::shipping::OtlpFormat(otlp_options()), true);
}
void BM_OtlpFromSamples1000(benchmark::State& state) {
  run(state, tally::shipping::OtlpFormat(otlp_options()), false);
}
void BM_InfluxTop1000(benchmark::State& state) {
  tally::shipping::InfluxOptions o;
  o.rollup = top20();
  run(state, tally::shipping::InfluxFormat(o), false);
}
void BM_RemoteWriteFromSamples1000(benchmark::State& state) {
  run(state, tally::shipping::RemoteWriteFormat({}, {}), false);
}
void BM_RemoteWriteTop1000(benchmark::State& state) {
  tally::shipping::RemoteWriteOptions o;
  o.rollup = top20();
  run(state, tally::shipping::RemoteWriteFormat(o, {}), false);
}
// The compression each protocol wants, on its own body of the same batch.
void BM_SnappyOfRemoteWriteBody(benchmark::State& state) {
  const StoredBatch& stored = stored_batch();
  const std::vector<std::string_view> records(stored.records.begin(), stored.records.end());
  auto decoder = decoder_of(stored);
  const std::vector<Sample> samples = std::move(*decoder.decode(records));
  const std::string body = *tally::shipping::RemoteWriteFormat({}, {}).encode(
      stored.batch, samples, 0, static_cast<std::uint32_t>(samples.size()));
  std::size_t out = 0;
  for (auto _ : state) {
    std::string block = tally::shipping::snappy_compress(body);
    out = block.size();
    benchmark::DoNotOptimize(block);
  }
  state.counters["body_bytes"] = static_cast<double>(body.size());
  state.counters["compressed_bytes"] = static_cast<double>(out);
}
BENCHMARK(BM_InfluxViaJsonLines1000);
BENCHMARK(BM_InfluxFromSamples1000);
BENCHMARK(BM_OtlpViaJsonLines1000);
BENCHMARK(BM_OtlpFromSamples1000);
BENCHMARK(BM_InfluxTop1000);
BENCHMARK(BM_RemoteWriteFromSamples1000);
BENCHMARK(BM_RemoteWriteTop1000);
BENCHMARK(BM_SnappyOfRemoteWriteBody);

}  // namespace

BENCHMARK_MAIN();
