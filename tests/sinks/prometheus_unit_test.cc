// The Prometheus exporter's pure parts: running totals with eviction and
// bounds, the text format, and the listen address.
#include <gtest/gtest.h>

#include "agent/exposition.h"
#include "agent/group_totals.h"
#include "agent/listen_address.h"
#include "agent/process_totals.h"

namespace tally::agent {
namespace {

samples::ProcessSample sample(std::uint32_t pid, std::uint64_t cpu_ns, bool exited = false,
                              std::string comm = "burn") {
  samples::ProcessSample s;
  s.pid = pid;
  s.start_time_ns = 1000 + pid;
  s.comm = std::move(comm);
  s.cpu_ns = cpu_ns;
  s.rss_bytes = exited ? 0 : 4096;
  s.exited = exited;
  return s;
}

TEST(PrometheusTotals, SumIntervalsIntoCumulativeCounters) {
  ProcessTotals t({});
  t.add_interval(std::vector{sample(1, 100), sample(2, 5)});
  t.add_interval(std::vector{sample(1, 50)});
  auto shown = t.scrape();
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(shown[0].pid, 1u);
  EXPECT_EQ(shown[0].cpu_ns, 150u);
  EXPECT_EQ(shown[1].cpu_ns, 5u);
}

TEST(PrometheusTotals, AnExitedProcessIsShownForOneScrapeIntervalThenDropsOut) {
  ProcessTotals t({});
  t.add_interval(std::vector{sample(1, 100), sample(2, 10)});
  t.add_interval(std::vector{sample(2, 10, true)});
  auto first = t.scrape();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(first[1].exited);
  EXPECT_EQ(first[1].cpu_ns, 20u) << "its final total";
  EXPECT_EQ(first[1].rss_bytes, 4096u) << "the last resident size seen alive";
  auto second = t.scrape();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].pid, 1u);
  EXPECT_EQ(t.tracked(), 1u);
}

TEST(PrometheusTotals, ExitedProcessesDoNotPileUpWithoutAScraper) {
  ProcessTotalsOptions o;
  o.exited_keep_intervals = 3;
  ProcessTotals t(o);
  for (std::uint32_t i = 0; i < 100; ++i) t.add_interval(std::vector{sample(100 + i, 1, true)});
  EXPECT_LE(t.tracked(), 3u);
}

TEST(PrometheusTotals, CardinalityIsBoundedByTopAndMinimumCpu) {
  ProcessTotalsOptions o;
  o.top = 2;
  o.min_cpu_ns = 10;
  ProcessTotals t(o);
  t.add_interval(std::vector{sample(1, 5), sample(2, 30), sample(3, 20), sample(4, 10)});
  auto shown = t.scrape();
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(shown[0].pid, 2u);
  EXPECT_EQ(shown[1].pid, 3u);
  EXPECT_EQ(t.omitted_last_scrape(), 1u) << "pid 4 is over the top 2; pid 1 under the minimum";
}

TEST(PrometheusTotals, SweepRemovesLongUnseenProcessesThatAreGone) {
  ProcessTotalsOptions o;
  o.stale_intervals = 2;
  ProcessTotals t(o);
  t.add_interval(std::vector{sample(1, 5), sample(2, 5)});
  t.add_interval({});
  t.add_interval({});
  t.sweep([](std::uint32_t pid, std::uint64_t) { return pid == 2; });
  ASSERT_EQ(t.tracked(), 1u);
  EXPECT_EQ(t.scrape()[0].pid, 2u);
}

TEST(PrometheusExposition, RendersFamiliesWithHelpTypeAndEscapedLabels) {
  std::vector<ProcessTotal> p(1);
  p[0].pid = 42;
  p[0].comm = "a\"b\\c\nd\xFF";
  p[0].cpu_ns = 1500000000;
  p[0].rss_bytes = 8192;
  ExporterHealth h;
  h.outbox_pending_batches = 3;
  h.sinks.push_back({"vm", true, 10, 2, 7, 1});
  const std::string page = render_exposition(p, h);
  EXPECT_NE(page.find("# TYPE tally_process_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(
      page.find(
          "tally_process_cpu_seconds_total{pid=\"42\",comm=\"a\\\"b\\\\c\\nd\xEF\xBF\xBD\"} 1.5\n"),
      std::string::npos)
      << page;
  EXPECT_NE(page.find("tally_process_resident_memory_bytes{pid=\"42\""), std::string::npos);
  EXPECT_NE(page.find("tally_outbox_pending_batches 3\n"), std::string::npos);
  EXPECT_NE(page.find("tally_sink_send_failures_total{sink=\"vm\"} 2\n"), std::string::npos);
  EXPECT_NE(page.find("tally_sink_samples_lost_total{sink=\"vm\"} 7\n"), std::string::npos);
  EXPECT_NE(page.find("tally_sink_failing{sink=\"vm\"} 1\n"), std::string::npos);
  EXPECT_EQ(page.back(), '\n');
}

TEST(PrometheusExposition, APidReusedUnderTheSameNameShowsTheLiveProcess) {
  std::vector<ProcessTotal> p(2);
  p[0].pid = p[1].pid = 7;
  p[0].comm = p[1].comm = "sh";
  p[0].exited = true;
  p[0].cpu_ns = 9000000000;
  p[1].cpu_ns = 1000000000;
  const std::string page = render_exposition(p, {});
  EXPECT_NE(page.find("tally_process_cpu_seconds_total{pid=\"7\",comm=\"sh\"} 1\n"),
            std::string::npos)
      << page;
  EXPECT_EQ(page.find(" 9\n"), std::string::npos);
}

samples::IntervalSamples interval_of(std::vector<samples::ProcessSample> processes) {
  samples::IntervalSamples in;
  for (auto& p : processes) {
    p.ts_ns = 2'000'000'000;
    p.interval_ns = 1'000'000'000;
    p.start_time_ns = 0;
  }
  in.processes = std::move(processes);
  in.host.ts_ns = 2'000'000'000;
  in.host.interval_ns = 1'000'000'000;
  return in;
}

TEST(PrometheusExposition, GroupsAndAllProcessesAreCumulativeSumsOfEveryLine) {
  auto rules =
      shipping::GroupMatcher::compile({{"burners", shipping::GroupRule::Field::comm, "^burn$"}});
  ASSERT_TRUE(rules.ok());
  GroupTotals g(50, std::move(*rules));
  g.add_interval(interval_of({sample(1, 1'000'000'000), sample(2, 500'000'000, false, "sh")}));
  g.add_interval(interval_of({sample(1, 250'000'000)}));
  EXPECT_EQ(g.all_cpu_ns(), 1'750'000'000u);
  const std::string page = render_exposition({}, {}, &g);
  EXPECT_NE(page.find("# TYPE tally_group_cpu_seconds_total counter\n"), std::string::npos);
  EXPECT_NE(page.find("tally_processes_cpu_seconds_total 1.75\n"), std::string::npos) << page;
  EXPECT_NE(page.find("tally_group_cpu_seconds_total{by=\"comm\",group=\"burn\"} 1.25\n"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("tally_group_cpu_seconds_total{by=\"comm\",group=\"sh\"} 0.5\n"),
            std::string::npos);
  EXPECT_NE(page.find("tally_group_cpu_seconds_total{by=\"group\",group=\"burners\"} 1.25\n"),
            std::string::npos);
  EXPECT_NE(page.find("tally_group_cpu_seconds_total{by=\"group\",group=\"(unmatched)\"} 0.5\n"),
            std::string::npos);
  // sh had no line in the last interval: its gauges say 0 now.
  EXPECT_NE(page.find("tally_group_processes{by=\"comm\",group=\"sh\"} 0\n"), std::string::npos);
  EXPECT_NE(page.find("tally_group_processes{by=\"comm\",group=\"burn\"} 1\n"), std::string::npos);
}

TEST(PrometheusListenAddress, AcceptsIpv4AndBracketedIpv6WithAPort) {
  auto a = parse_listen_address("127.0.0.1:9464");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->ip, "127.0.0.1");
  EXPECT_EQ(a->port, 9464);
  auto b = parse_listen_address("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->ip, "::1");
  EXPECT_EQ(b->port, 0);
}

TEST(PrometheusListenAddress, RefusesNamesMissingPortsAndBadNumbers) {
  for (const char* bad :
       {"localhost:9464", "127.0.0.1", "127.0.0.1:", ":9464", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:9x", "::1:9464", "[::1:9464", "300.1.1.1:80"}) {
    auto r = parse_listen_address(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().message(),
                fmt::format("\"{}\" is not IP:PORT (accepted: an IPv4 address or a bracketed "
                            "IPv6 address, a colon, and a port 0 to 65535, e.g. 127.0.0.1:9464)",
                            bad));
    }
  }
}

}  // namespace
}  // namespace tally::agent
