// tallyd ships with format = "influx" to a real VictoriaMetrics (Debian's
// victoria-metrics) through the fault-injecting proxy, across server
// errors, throttling, timeouts, resets and a VictoriaMetrics restart. Then
// every sample tallyd committed must be in VictoriaMetrics exactly once with
// its value: one point per (series, timestamp), none extra.
#include <gtest/gtest.h>

#include "line_protocol_expect.h"
#include "sink_system.h"
#include "tsdb_servers.h"

namespace tally::test {
namespace {

TEST(VictoriaMetricsSink, EveryCommittedSampleIsStoredExactlyOnceThroughFaultsAndARestart) {
  TALLY_REQUIRE_BPF();
  ASSERT_FALSE(find_program("victoria-metrics").empty())
      << "victoria-metrics is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  VictoriaMetricsServer vm(dir);
  ASSERT_TRUE(vm.server().start()) << vm.server().error();
  SinkSystem sys(dir, vm.port());
  sys.start_agent({"--endpoint", sys.proxy_url("/write"), "--format", "influx"});

  phase("healthy, with an oddly named burner", 2s);
  sys.burn_odd(300);
  phase("healthy", 8s);
  sys.proxy().set_mode(FaultProxy::Mode::error_500);
  phase("500 responses", 6s);
  sys.proxy().set_mode(FaultProxy::Mode::throttle_429);
  phase("429 with Retry-After", 5s);
  sys.proxy().set_slow_delay_ms(4000);  // longer than tallyd's 3 s timeout: re-sends
  sys.proxy().set_mode(FaultProxy::Mode::slow);
  phase("responses slower than the timeout", 10s);
  sys.proxy().set_mode(FaultProxy::Mode::reset_body);
  phase("connections reset mid-body", 5s);
  sys.proxy().set_mode(FaultProxy::Mode::pass);
  vm.server().stop();  // SIGTERM: VictoriaMetrics flushes what it acknowledged
  phase("VictoriaMetrics down", 8s);
  ASSERT_TRUE(vm.server().start()) << vm.server().error();
  phase("healthy after the restart", 8s);

  const auto status = sys.status();
  const auto& sink = status["sinks"][0];
  EXPECT_EQ(sink["format"], "influx");
  EXPECT_GT(sink["requests_failed"].get<std::uint64_t>(), 5u);
  EXPECT_EQ(sink["gaps_shipped"], false);
  sys.flush_and_stop();
  EXPECT_GT(sys.proxy().faulted(), 10u);
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);

  // Every committed sample, each field checked, exactly once.
  const auto expected = expected_points(sys.committed(), TagDialect::victoria_metrics);
  auto stored = vm.stored();
  std::map<std::string, std::size_t> expected_per_metric;
  std::size_t checked = 0, missing = 0, duplicated = 0, wrong = 0;
  bool saw_odd_name = false;
  for (const auto& p : expected) {
    if (p.tags.count("comm") && p.tags.at("comm") == kOddBurnerName) saw_odd_name = true;
    for (const auto& [field, value] : p.fields) {
      const std::string metric = p.measurement + "_" + field;
      ++expected_per_metric[metric];
      const auto& values =
          stored[series_key(metric, p.tags)][static_cast<std::int64_t>(p.ts_ns / 1'000'000)];
      ++checked;
      if (values.empty()) {
        if (++missing <= 3)
          ADD_FAILURE() << "missing " << series_key(metric, p.tags) << " @" << p.ts_ns;
      } else if (values.size() > 1) {
        if (++duplicated <= 3)
          ADD_FAILURE() << values.size() << " points for " << series_key(metric, p.tags);
      } else if (values[0] != value) {
        if (++wrong <= 3) {
          ADD_FAILURE() << series_key(metric, p.tags) << " @" << p.ts_ns << ": " << values[0]
                        << " stored, " << value << " committed";
        }
      }
    }
  }
  // Nothing stored that tallyd did not commit.
  std::map<std::string, std::size_t> stored_per_metric;
  for (const auto& [key, points] : stored) {
    const std::string metric = key.substr(0, key.find('{'));
    for (const auto& [ts, values] : points) stored_per_metric[metric] += values.size();
  }
  for (const auto& [metric, n] : expected_per_metric) {
    EXPECT_EQ(stored_per_metric[metric], n) << metric;
  }
  EXPECT_TRUE(saw_odd_name) << "the burner named \"" << kOddBurnerName << "\" was not seen";
  std::printf(
      "%zu samples committed; %zu (series, timestamp, value) points checked in "
      "VictoriaMetrics: %zu missing, %zu duplicated, %zu wrong; %llu requests faulted\n",
      sys.committed().size(), checked, missing, duplicated, wrong,
      static_cast<unsigned long long>(sys.proxy().faulted()));
  EXPECT_EQ(missing + duplicated + wrong, 0u);
}

}  // namespace
}  // namespace tally::test
