// Chunks (sample_chunk.h): what goes in comes out, tallyd's lines are kept
// as integers and served back byte for byte, anything else keeps its text,
// and a damaged blob is an error, never a crash.
#include "collector/sample_chunk.h"

#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "collector/batch_parser.h"
#include "collector/json_text.h"
#include "collector_test_support.h"

namespace tally::collector {
namespace {

std::vector<ChunkSample> a_mix() {
  std::vector<ChunkSample> out;
  ChunkSample p;
  p.ts_ns = 1'700'000'000'000'000'000;
  p.interval_ns = 60'000'000'000;
  p.names_id = 500;
  p.cpu_ns = 123'456'789;
  p.rss_bytes = 4096 * 2500;
  out.push_back(p);
  p.names_id = 3;       // a negative delta
  p.rss_bytes = 12345;  // not whole pages
  p.exited = true;
  out.push_back(p);
  p.names_id = 4;
  p.exited = false;
  p.names_at_end = true;
  p.ts_ns -= 7;  // earlier than the previous sample
  p.interval_ns = 1'000'000'000;
  out.push_back(p);
  p.verbatim = R"({"kind":"process","pid":1,"extra":[1,2]})";
  p.names_at = 18;
  out.push_back(p);
  ChunkSample h;
  h.is_process = false;
  h.ts_ns = p.ts_ns + 60'000'000'000;
  h.interval_ns = p.interval_ns;
  h.ncpu = 64;
  h.busy_ns = 9'000'000'000'000;
  h.processes = 1000;
  h.dropped_updates = 3;
  out.push_back(h);
  ChunkSample ep = out[0];  // this release's fields
  ep.extended = true;
  ep.wait_ns = 987'654;
  out.push_back(ep);
  h.extended = true;
  h.steal_ns = 5;
  h.psi_some_ns = 6'000;
  h.psi_full_ns = 7;
  h.unaccounted_ns = -8;
  h.bpf_run_ns = 9;
  out.push_back(h);
  ChunkSample c;  // a cgroup line: its text only
  c.is_process = false;
  c.is_cgroup = true;
  c.ts_ns = h.ts_ns;
  c.interval_ns = h.interval_ns;
  c.verbatim = R"({"kind":"cgroup","ts_ns":1,"cgroup":"/a","processes":1})";
  out.push_back(c);
  return out;
}

TEST(SampleChunk, DecodesWhatWasEncoded) {
  const auto samples = a_mix();
  const std::string blob = encode_chunk(samples);
  auto decoded = decode_chunk(blob);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message();
  EXPECT_EQ(*decoded, samples);
  const ChunkSpan span = chunk_span(samples);
  EXPECT_EQ(span.min_ts_ns, samples[2].ts_ns);
  EXPECT_EQ(span.max_ts_ns, samples[4].ts_ns);
}

TEST(SampleChunk, ATallydIntervalTakesAFewBytesPerSample) {
  std::vector<ChunkSample> samples;
  for (int i = 0; i < 1000; ++i) {
    ChunkSample s;
    s.ts_ns = 1'700'000'000'000'000'000;
    s.interval_ns = 60'000'000'000;
    s.names_id = 10'000 + i;
    s.cpu_ns = 1'000'000 + static_cast<std::uint64_t>(i) * 7919;
    s.rss_bytes = static_cast<std::uint64_t>(1000 + i) * 4096;
    samples.push_back(s);
  }
  const std::string blob = encode_chunk(samples);
  // Before zstd: tag 1, names delta 1, cpu_ns 3, rss pages 2 bytes. Tags and
  // deltas all alike take next to nothing after it.
  EXPECT_LT(blob.size(), 1000u * 6) << "zstd should find the runs";
}

TEST(SampleChunk, EveryTruncationOrDamageIsAnErrorNotACrash) {
  // The first release's samples, and this release's: each mix small enough
  // that zstd finds nothing worth packing, so damage reaches the decoder.
  const auto all = a_mix();
  const std::vector<std::vector<ChunkSample>> mixes{{all.begin(), all.begin() + 5},
                                                    {all[5], all[6]}};
  for (const auto& mix : mixes) {
    const std::string blob = encode_chunk(mix);
    ASSERT_EQ(blob[1], 0) << "small enough to be kept as it is, so that bytes can be damaged";
    for (std::size_t n = 0; n < blob.size(); ++n) {
      EXPECT_FALSE(decode_chunk(blob.substr(0, n)).ok()) << "cut at " << n;
    }
    EXPECT_FALSE(decode_chunk(blob + "x").ok());
    std::mt19937 rng(7);
    for (int round = 0; round < 20000; ++round) {
      std::string damaged = blob;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) damaged[rng() % damaged.size()] = static_cast<char>(rng());
      auto decoded = decode_chunk(damaged);  // may decode to other samples; must not crash
      if (decoded.ok()) {
        EXPECT_LE(decoded->size(), damaged.size());
      }
    }
  }
  EXPECT_FALSE(decode_chunk("").ok());
  EXPECT_FALSE(decode_chunk(std::string("\x07\x00\x01", 3)).ok());  // an unknown format
  EXPECT_FALSE(decode_chunk(std::string("\x02\x05\x01", 3)).ok());  // an unknown coding
  // A count far beyond the bytes.
  EXPECT_FALSE(decode_chunk(std::string("\x02\x00\xff\xff\xff\xff\x0f", 7)).ok());
  // A zstd frame that claims a gigabyte.
  std::string huge("\x02\x01", 2);
  huge += std::string("\x28\xb5\x2f\xfd\x84\x00\x00\x00\x40", 9);
  EXPECT_FALSE(decode_chunk(huge).ok());
}

// The samples of a body as the collector parses it.
std::vector<StoredSample> parse(const std::string& body) {
  std::istringstream in(body);
  auto r = parse_batch(in);
  EXPECT_TRUE(r.ok()) << r.error().message();
  if (!r.ok()) return {};
  return std::get<SamplesPiece>(r->body).samples;
}

ProcessNames names_of(const StoredSample& s, const std::string& names) {
  return ProcessNames{*s.pid, *s.start_time_ns, names};
}

TEST(SampleChunk, TallydsLinesAreKeptAsIntegersAndServedBackByteForByte) {
  const auto lines = test::agent_lines("web-1", 1'700'000'000'000'000'000, 20);
  const auto with = parse(test::samples_body("a", "web-1", 1, lines));
  const auto without =
      parse(test::version2(test::samples_body("a", "web-1", 1, test::without_names(lines))));
  ASSERT_EQ(with.size(), lines.size());
  ASSERT_EQ(without.size(), lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    ASSERT_TRUE(with[i].canonical);
    ASSERT_TRUE(without[i].canonical);
    const std::vector<ChunkSample> chunk{to_chunk_sample(with[i], 7),
                                         to_chunk_sample(without[i], 7)};
    EXPECT_FALSE(chunk[0].verbatim);
    auto back = decode_chunk(encode_chunk(chunk));
    ASSERT_TRUE(back.ok());
    const ProcessNames names = with[i].pid ? names_of(with[i], with[i].names) : ProcessNames{};
    const ProcessNames* n = with[i].pid ? &names : nullptr;
    EXPECT_EQ(sample_json((*back)[0], "web-1", n), lines[i]);
    // Sent without names: served with the names at the end, as before.
    const std::string expected =
        with[i].pid ? with_names(test::without_names(lines[i]),
                                 test::without_names(lines[i]).size() - 1, with[i].names)
                    : lines[i];
    EXPECT_EQ(sample_json((*back)[1], "web-1", n), expected);
  }
}

// A tallyd from before wait, container and host pressure fields: its lines
// are still stored as integers (no verbatim text), and served back as sent.
TEST(SampleChunk, AnOlderTallydsLinesAreKeptAsIntegersToo) {
  const auto lines = test::agent_lines("web-1", 1'700'000'000'000'000'000, 8, 100, true,
                                       samples::Form::first_release);
  const auto stored = parse(test::samples_body("a", "web-1", 1, lines));
  ASSERT_EQ(stored.size(), lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    ASSERT_TRUE(stored[i].canonical);
    EXPECT_FALSE(stored[i].extended);
    const std::vector<ChunkSample> chunk{to_chunk_sample(stored[i], 7)};
    auto back = decode_chunk(encode_chunk(chunk));
    ASSERT_TRUE(back.ok());
    const ProcessNames names =
        stored[i].pid ? names_of(stored[i], stored[i].names) : ProcessNames{};
    EXPECT_EQ(sample_json((*back)[0], "web-1", stored[i].pid ? &names : nullptr), lines[i]);
  }
}

// A chunk written before format 3 (no extended tag, no wait values) reads.
TEST(SampleChunk, AFormat2ChunkStillDecodes) {
  auto samples = a_mix();
  std::erase_if(samples, [](const ChunkSample& s) { return s.extended || s.is_cgroup; });
  for (auto& s : samples) s.verbatim.reset();
  std::string blob = encode_chunk(samples);
  auto decoded = decode_chunk(blob);
  ASSERT_TRUE(decoded.ok());
  // Without extended samples the bytes after the header are those of a
  // format 2 chunk: relabel it and read it back.
  blob[0] = 2;
  auto old = decode_chunk(blob);
  ASSERT_TRUE(old.ok()) << old.error().message();
  EXPECT_EQ(*old, *decoded);
  // An extended sample cannot be in a format 2 chunk.
  samples[0].extended = true;
  samples[0].wait_ns = 5;
  std::string extended = encode_chunk(samples);
  extended[0] = 2;
  EXPECT_FALSE(decode_chunk(extended).ok());
}

// Cgroup lines came with format 4: a format 3 chunk cannot hold one, and
// one without its text is damage.
TEST(SampleChunk, ACgroupLineIsFormat4AndAlwaysHasItsText) {
  auto samples = a_mix();
  std::erase_if(samples, [](const ChunkSample& s) { return !s.is_cgroup; });
  ASSERT_EQ(samples.size(), 1u);
  std::string blob = encode_chunk(samples);
  ASSERT_TRUE(decode_chunk(blob).ok());
  blob[0] = 3;
  EXPECT_FALSE(decode_chunk(blob).ok());
  samples[0].verbatim.reset();
  EXPECT_FALSE(decode_chunk(encode_chunk(samples)).ok());
}

TEST(SampleChunk, AnyOtherSampleKeepsItsTextExactly) {
  const auto lines = test::agent_lines("web-1", 1'700'000'000'000'000'000, 2);
  const std::string& line = lines[0];
  std::string unknown_field = line;
  unknown_field.insert(unknown_field.size() - 1, R"(,"gpu":{"ns":[1,2.50]})");
  std::string spelled_otherwise = line;
  const auto pct = spelled_otherwise.find("\"cpu_pct\":0.0,");
  ASSERT_NE(pct, std::string::npos) << line;
  spelled_otherwise.replace(pct, 14, "\"cpu_pct\":0.00,");
  // The names first, before ts_ns: another key order.
  const auto comm = line.find(",\"comm\":");
  const auto cpu = line.find(",\"cpu_ns\":");
  std::string names_first =
      "{" + line.substr(comm + 1, cpu - comm) + line.substr(1, comm - 1) + line.substr(cpu);
  for (const std::string& text : {unknown_field, spelled_otherwise, names_first}) {
    SCOPED_TRACE(text);
    const auto parsed = parse(test::samples_body("a", "web-1", 1, {text}));
    ASSERT_EQ(parsed.size(), 1u);
    EXPECT_FALSE(parsed[0].canonical);
    const std::vector<ChunkSample> chunk{to_chunk_sample(parsed[0], 9)};
    ASSERT_TRUE(chunk[0].verbatim);
    auto back = decode_chunk(encode_chunk(chunk));
    ASSERT_TRUE(back.ok());
    const ProcessNames names = names_of(parsed[0], parsed[0].names);
    EXPECT_EQ(sample_json((*back)[0], "web-1", &names), text);
  }
}

}  // namespace
}  // namespace tally::collector
