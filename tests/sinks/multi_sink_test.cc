// Several sinks at once, each with its own delivery state: a sink that
// fails does not hold back the others, `tally status` shows each, and the
// failing one catches up with everything once its server recovers.
#include <gtest/gtest.h>

#include "collector_run.h"
#include "otlp_receiver.h"
#include "sink_system.h"

namespace tally::test {
namespace {

TEST(MultiSink, AFailingSinkDoesNotHoldBackTheOthersAndCatchesUpLater) {
  TALLY_REQUIRE_BPF();
  TempDir dir;
  CollectorRun collector(dir / "collector.db");
  OtlpReceiver otel;
  otel.set_default({503, R"({"code":14,"message":"down for the test"})", ""});
  SinkSystem sys(dir, otel.port());
  const std::string config = write_sink_config(
      dir, {"name = \"collector\"\nformat = \"native\"\nurl = \"" + collector.url("/v1/batches") +
                "\"\n",
            "name = \"otel\"\nformat = \"otlp\"\nurl = \"" + otel.url() + "\"\n"});
  sys.start_agent({"--config", config});
  phase("the otlp sink failing", 5s);

  auto status = sys.status();
  ASSERT_EQ(status["sinks"].size(), 2u);
  EXPECT_EQ(status["sinks"][0]["name"], "collector");
  EXPECT_EQ(status["sinks"][0]["state"], "healthy");
  EXPECT_EQ(status["sinks"][1]["name"], "otel");
  EXPECT_EQ(status["sinks"][1]["state"], "failing");
  EXPECT_EQ(status["health"]["status"], "degraded");
  const auto& outbox_sinks = status["outbox"]["sinks"];
  EXPECT_LE(outbox_sinks[0]["pending"].get<std::uint64_t>(), 2u) << "the collector keeps up";
  EXPECT_GE(outbox_sinks[1]["pending"].get<std::uint64_t>(), 3u) << "the otlp sink's batches wait";
  const auto human = sys.tally({"status"});
  EXPECT_NE(human.out.find("sink       collector (native)"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("sink       otel (otlp)"), std::string::npos) << human.out;
  EXPECT_GT(collector.get("/v1/agents")["agents"][0]["samples_stored"].get<std::uint64_t>(), 0u);

  otel.set_default({200, "{}", ""});
  phase("both healthy", 2s);
  sys.flush_and_stop();
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);

  // Both servers got every committed sample.
  std::size_t processes = 0;
  for (const auto& j : sys.committed()) processes += j["kind"] == "process";
  const auto agent = collector.get("/v1/agents")["agents"][0];
  EXPECT_EQ(agent["samples_stored"].get<std::uint64_t>(), sys.committed().size());
  EXPECT_TRUE(agent["missing"].empty()) << agent.dump();
  std::size_t otlp_processes = 0, refused = 0;
  for (const auto& r : otel.requests()) {
    if (r.answered != 200) {
      ++refused;
      continue;
    }
    const auto j = nlohmann::json::parse(r.body);
    for (const auto& rm : j["resourceMetrics"]) {
      otlp_processes += rm["resource"].dump().find("process.pid") != std::string::npos;
    }
  }
  std::printf(
      "%zu samples committed; collector stored %llu; otlp accepted %zu process samples "
      "after refusing %zu requests\n",
      sys.committed().size(),
      static_cast<unsigned long long>(agent["samples_stored"].get<std::uint64_t>()), otlp_processes,
      refused);
  EXPECT_GT(refused, 0u);
  EXPECT_EQ(otlp_processes, processes);
}

}  // namespace
}  // namespace tally::test
