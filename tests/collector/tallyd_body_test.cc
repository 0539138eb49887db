// The fast path (tallyd_body.h) takes exactly tallyd's bodies, and reads
// them as the full parser does; any other body is left to the full parser.
#include "collector/tallyd_body.h"

#include <sstream>

#include <gtest/gtest.h>

#include "collector/batch_parser.h"
#include "collector_test_support.h"
#include "samples/json_line_reader.h"
#include "shipping/native_format.h"

namespace tally::collector {
namespace {

BatchRequest full_parse(const std::string& body) {
  std::istringstream in(body);
  auto r = parse_batch(in);
  EXPECT_TRUE(r.ok()) << r.error().message();
  return r.ok() ? std::move(r).value() : BatchRequest{};
}

void expect_same(const BatchRequest& fast, const BatchRequest& full) {
  EXPECT_EQ(fast.agent_id, full.agent_id);
  EXPECT_EQ(fast.host, full.host);
  EXPECT_EQ(fast.seq, full.seq);
  const auto& a = std::get<SamplesPiece>(fast.body);
  const auto& b = std::get<SamplesPiece>(full.body);
  EXPECT_EQ(a.first_index, b.first_index);
  EXPECT_EQ(a.batch_samples, b.batch_samples);
  ASSERT_EQ(a.samples.size(), b.samples.size());
  for (std::size_t i = 0; i < a.samples.size(); ++i) {
    SCOPED_TRACE(b.samples[i].json);
    const StoredSample& x = a.samples[i];
    const StoredSample& y = b.samples[i];
    EXPECT_EQ(x.index, y.index);
    EXPECT_EQ(x.host, y.host);
    EXPECT_EQ(x.ts_ns, y.ts_ns);
    EXPECT_EQ(x.interval_ns, y.interval_ns);
    EXPECT_EQ(x.pid, y.pid);
    EXPECT_EQ(x.start_time_ns, y.start_time_ns);
    EXPECT_EQ(x.cpu_ns, y.cpu_ns);
    EXPECT_EQ(x.rss_bytes, y.rss_bytes);
    EXPECT_EQ(x.exited, y.exited);
    EXPECT_EQ(x.ncpu, y.ncpu);
    EXPECT_EQ(x.busy_ns, y.busy_ns);
    EXPECT_EQ(x.processes, y.processes);
    EXPECT_EQ(x.dropped_updates, y.dropped_updates);
    EXPECT_EQ(x.names, y.names);
    EXPECT_EQ(x.names_at, y.names_at);
    EXPECT_EQ(x.json, y.json);
    EXPECT_TRUE(x.canonical);
    EXPECT_EQ(x.canonical, y.canonical);
  }
}

// A body as NativeFormat writes it: its envelope's keys in its order.
std::string tallyd_body(const std::string& agent_id, std::uint64_t seq,
                        const std::vector<std::string>& lines, std::size_t first, std::size_t n,
                        int version = 2) {
  std::string body = R"({"version":)" + std::to_string(version) + R"(,"agent_id":")" + agent_id +
                     R"(","host":"web-1","seq":)" + std::to_string(seq) +
                     R"(,"kind":"samples","first_index":)" + std::to_string(first) +
                     R"(,"batch_samples":)" + std::to_string(lines.size()) + R"(,"samples":[)";
  for (std::size_t i = first; i < first + n; ++i) {
    if (i > first) body += ',';
    body += lines[i];
  }
  return body + "]}";
}
std::string tallyd_body(const std::string& agent_id, std::uint64_t seq,
                        const std::vector<std::string>& lines, int version = 2) {
  return tallyd_body(agent_id, seq, lines, 0, lines.size(), version);
}

std::vector<std::string> lines_with_odd_names() {
  auto lines = test::agent_lines("web-1", 1'700'000'000'000'000'000, 30);
  // Names tallyd escapes: quotes, a backslash, a control byte, UTF-8.
  lines[3] = test::agent_lines("web-1", 1'700'000'000'000'000'000, 1, 7, false)[0];
  auto at = lines[3].find("worker-7");
  lines[3].replace(at, 8, R"(w\"or\\k\u0001é)");
  return lines;
}

TEST(TallydBody, ReadsTallydsBodiesAsTheFullParserDoes) {
  const auto lines = lines_with_odd_names();
  // The shipper's own encoder, so that the envelope above is tallyd's.
  shipping::NativeFormat format("3f1c-agent", "web-1");
  std::vector<samples::Sample> structs;
  for (const auto& line : test::agent_lines("web-1", 1'700'000'000'000'000'000, 10)) {
    auto parsed = samples::parse_json_line(line);
    ASSERT_TRUE(parsed.ok());
    structs.push_back(*parsed);
  }
  queue::Batch batch;
  batch.seq = 11;
  auto native = format.encode(batch, structs, 0, static_cast<std::uint32_t>(structs.size()));
  ASSERT_TRUE(native.ok());
  format.acknowledged(structs, 0, static_cast<std::uint32_t>(structs.size()));
  batch.seq = 12;
  auto steady = format.encode(batch, structs, 2, 5);  // a piece, names left out
  ASSERT_TRUE(steady.ok());
  for (const std::string& body :
       {tallyd_body("3f1c-agent", 7, lines, 1),
        tallyd_body("3f1c-agent", 8, test::without_names(lines)),
        tallyd_body("3f1c-agent", 9, lines, 10, 12), tallyd_body("a", 10, {}), *native, *steady}) {
    SCOPED_TRACE(body.substr(0, 160));
    auto fast = read_tallyd_body(body);
    ASSERT_TRUE(fast.has_value()) << "a body as tallyd writes it";
    expect_same(*fast, full_parse(body));
  }
}

TEST(TallydBody, LeavesEveryOtherBodyToTheFullParser) {
  const auto lines = test::agent_lines("web-1", 1'700'000'000'000'000'000, 5);
  const std::string good = tallyd_body("a", 7, lines, 1);
  ASSERT_TRUE(read_tallyd_body(good));
  auto edited = [&](std::string_view from, std::string_view to) {
    std::string body = good;
    const auto at = body.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) body.replace(at, from.size(), to);
    return body;
  };
  const std::vector<std::pair<std::string, std::string>> others = {
      {"a space", edited(R"("seq":7,)", R"("seq": 7,)")},
      {"an unknown field", edited(R"("exited":false})", R"("exited":false,"gpu":1})")},
      {"another number spelling", edited(R"("cpu_pct":0.0,)", R"("cpu_pct":0,)")},
      {"another key order",
       edited(R"({"version":1,"agent_id":"a",)", R"({"agent_id":"a","version":1,)")},
      {"a duplicate key", edited(R"("exited":false})", R"("exited":false,"exited":false})")},
      {"version 4", edited(R"("version":1,)", R"("version":4,)")},
      {"seq 0", edited(R"("seq":7,)", R"("seq":0,)")},
      {"seq past 2^63-1", edited(R"("seq":7,)", R"("seq":9223372036854775808,)")},
      {"an empty agent_id", edited(R"("agent_id":"a",)", R"("agent_id":"",)")},
      {"more samples than the batch", edited(R"("batch_samples":5,)", R"("batch_samples":4,)")},
      {"a pid past 32 bits", edited(R"("pid":100,)", R"("pid":4294967296,)")},
      {"names left out in version 1",
       test::samples_body("a", "web-1", 7, test::without_names(lines))},
      {"a gap record", test::gap_body("a", "web-1", 8, 1, 2, 100, "cap")},
      {"not JSON", good.substr(0, good.size() - 1)},
      {"text after the body", good + " "},
  };
  for (const auto& [what, body] : others) {
    EXPECT_FALSE(read_tallyd_body(body)) << what;
  }
}

// Cgroup lines (protocol version 3), as tallyd writes them with and without
// the figures a host may not offer: read by the fast path as by the full
// parser, and kept as their text.
TEST(TallydBody, ReadsCgroupLinesAsTheFullParserDoes) {
  samples::CgroupSample bare;
  bare.ts_ns = 1'700'000'000'000'000'000;
  bare.interval_ns = 60'000'000'000;
  bare.host = "web-1";
  bare.cgroup = "/system.slice/nginx.service";
  bare.container_id = "nginx.service";
  bare.container_runtime = "systemd";
  bare.processes = 3;
  bare.process_cpu_ns = 1'234'567;
  samples::CgroupSample full = bare;
  full.cgroup = "/kubepods/burstable/pod1/\"odd\"";
  full.pod = "web-0";
  full.pod_namespace = "shop";
  full.usage_known = full.throttling_known = full.pressure_known = true;
  full.cpu_ns = 1'300'000;
  full.cpu_pct = samples::percent(full.cpu_ns, full.interval_ns);
  full.nr_periods = 600;
  full.nr_throttled = 12;
  full.throttled_ns = 80'000'000;
  full.psi_some_ns = 5;
  full.psi_full_ns = 2;
  full.limit_cpus = 0.25;
  auto lines = test::agent_lines("web-1", 1'700'000'000'000'000'000, 3);
  lines.insert(lines.begin() + 1, samples::to_json_line(bare));
  lines.insert(lines.begin() + 2, samples::to_json_line(full));
  const std::string body = tallyd_body("a", 7, lines, 3);
  auto fast = read_tallyd_body(body);
  ASSERT_TRUE(fast.has_value()) << body;
  const BatchRequest slow = full_parse(body);
  const auto& a = std::get<SamplesPiece>(fast->body).samples;
  const auto& b = std::get<SamplesPiece>(slow.body).samples;
  ASSERT_EQ(a.size(), lines.size());
  ASSERT_EQ(b.size(), lines.size());
  for (std::size_t i = 1; i <= 2; ++i) {
    EXPECT_TRUE(a[i].is_cgroup);
    EXPECT_TRUE(b[i].is_cgroup);
    EXPECT_FALSE(a[i].pid.has_value());
    EXPECT_EQ(a[i].json, lines[i]);
    EXPECT_EQ(b[i].json, lines[i]) << "the full parser puts the path back where it stood";
    EXPECT_EQ(a[i].ts_ns, b[i].ts_ns);
    EXPECT_EQ(a[i].index, b[i].index);
  }
  // In a version 2 body a cgroup line is refused by both.
  const std::string v2 = tallyd_body("a", 7, lines, 2);
  EXPECT_FALSE(read_tallyd_body(v2));
  std::istringstream in(v2);
  auto refused = parse_batch(in);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message(), "samples[1].kind: cgroup lines need protocol version 3");
}

}  // namespace
}  // namespace tally::collector
