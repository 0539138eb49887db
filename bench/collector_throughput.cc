// How fast the collector drains a backlog: N batches of 1,000 samples,
// gzip-compressed as the agent sends them, one keep-alive connection, the
// default durability. Prints the rate; a timing is never an assertion.
// TALLY_COLLECTOR_BENCH_BATCHES=1440 replays a 24 h backlog at 60 s.
// A GoogleTest program for its fixtures (a collector process, bodies as the
// agent sends them), run by hand or by scripts/bench, not by ctest.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "collector_test_support.h"

namespace tally::test {
namespace {

TEST(CollectorThroughput, DrainsABacklogOfThousandSampleBatches) {
  const char* env = std::getenv("TALLY_COLLECTOR_BENCH_BATCHES");
  const int batches = env != nullptr ? std::atoi(env) : 100;
  const char* durability = std::getenv("TALLY_COLLECTOR_BENCH_DURABILITY");
  TempDir dir;
  CollectorProcess collector(dir / "collector.db",
                             {"--durability", durability != nullptr ? durability : "full"});
  ASSERT_TRUE(collector.started()) << collector.process().stderr_text();

  // Bodies are built before the clock starts: the agent has them ready in
  // its outbox.
  std::vector<std::string> bodies;
  std::size_t compressed = 0;
  for (int b = 0; b < batches; ++b) {
    std::uint64_t ts = 1'700'000'000'000'000'000 + static_cast<std::uint64_t>(b) * 60'000'000'000;
    bodies.push_back(gzip(samples_body("agent-1", "web-1", static_cast<std::uint64_t>(b + 1),
                                       agent_lines("web-1", ts, 1000))));
    compressed += bodies.back().size();
  }
  HttpConnection conn(collector.port());
  auto begin = std::chrono::steady_clock::now();
  for (const std::string& body : bodies) {
    HttpResponse r = conn.post_json(body, {{"Content-Encoding", "gzip"}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.json()["stored"], 1000);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::printf(
      "collector throughput: %d batches of 1000 samples (%.1f KiB gzip each) in %.2f s: "
      "%.0f batches/s, %.0f samples/s\n",
      batches, static_cast<double>(compressed) / batches / 1024.0, seconds, batches / seconds,
      batches * 1000.0 / seconds);
  std::fflush(stdout);
  EXPECT_EQ(collector.stop(), 0);
}

}  // namespace
}  // namespace tally::test
