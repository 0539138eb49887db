// format = "remote_write" against real receivers on loopback:
// - tallyd -> VictoriaMetrics through the fault proxy, with a VictoriaMetrics
//   restart and a SIGKILL of tallyd: every committed process and host line
//   is one sample whose increase over the series' sample before is the
//   line's CPU, and no counter went back (no reset across the restart);
// - tallyd -> Prometheus 2.42 with processes = "top": for every interval the
//   shipped processes plus the remainder increase by exactly the interval's
//   process CPU, host-wide and per group;
// - a 3-hour backlog replayed into a Prometheus with an out-of-order window
//   (all of it stored), and into one without (the refused part dead-lettered,
//   counted and named in the sink's status);
// - a fork storm of 10,000 processes makes no process series of its own.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "samples/json_line.h"
#include "shipping/remote_write_format.h"
#include "shipping/shipper.h"
#include "sink_system.h"
#include "tally/queue/outbox.h"
#include "tally/utf8.h"
#include "tsdb_servers.h"

namespace tally::test {
namespace {

using nlohmann::json;

// The labels tallyd gives a process line's series (remote_write_format.h).
std::map<std::string, std::string> process_labels(const json& j) {
  std::map<std::string, std::string> l;
  const auto add = [&](const char* label, const char* field) {
    if (j.contains(field) && !j[field].get<std::string>().empty()) {
      l[label] = utf8_sanitized(j[field].get<std::string>());
    }
  };
  add("host", "host");
  l["pid"] = std::to_string(j["pid"].get<std::uint64_t>());
  add("comm", "comm");
  add("cgroup", "cgroup");
  add("container", "container");
  add("pod", "pod");
  add("namespace", "namespace");
  return l;
}

std::int64_t to_ms(std::uint64_t ns) { return static_cast<std::int64_t>(ns / 1'000'000); }

// The increase of a counter series into its sample at `ts`: from the sample
// before it (0 after a reset). nullopt when there is no sample at ts, or
// none before it, or more than one value at ts.
struct Increase {
  std::optional<double> value;
  std::string problem;
};
Increase increase_at(const StoredSeries& stored, const std::string& key, std::int64_t ts) {
  const auto s = stored.find(key);
  if (s == stored.end()) return {std::nullopt, "no such series"};
  const auto at = s->second.find(ts);
  if (at == s->second.end()) return {std::nullopt, "no sample at the interval's end"};
  if (at->second.size() != 1) {
    return {std::nullopt, std::to_string(at->second.size()) + " values at one timestamp"};
  }
  if (at == s->second.begin()) return {std::nullopt, "no sample before the first"};
  const double before = std::prev(at)->second.back();
  const double now = at->second.front();
  return {now >= before ? now - before : now, {}};
}

const std::map<std::int64_t, std::vector<double>>& points_of(const StoredSeries& s,
                                                             const std::string& key) {
  static const std::map<std::int64_t, std::vector<double>> none;
  const auto it = s.find(key);
  return it == s.end() ? none : it->second;
}

// Seconds as stored: doubles of ns / 1e9, after sums of many of them.
bool seconds_match(double stored_s, std::uint64_t expected_ns) {
  return std::fabs(stored_s * 1e9 - static_cast<double>(expected_ns)) <=
         2.0 + 1e-9 * static_cast<double>(expected_ns);
}

std::string sink_table(const std::string& url, const std::string& extra) {
  return "name = \"rw\"\nformat = \"remote_write\"\nurl = \"" + url + "\"\n" + extra;
}

TEST(RemoteWriteSink, VictoriaMetricsStoresEveryLineOnceThroughFaultsAndRestartsOfBoth) {
  TALLY_REQUIRE_BPF();
  ASSERT_FALSE(find_program("victoria-metrics").empty())
      << "victoria-metrics is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  VictoriaMetricsServer vm(dir);
  ASSERT_TRUE(vm.server().start()) << vm.server().error();
  SinkSystem sys(dir, vm.port());
  const std::string config =
      write_sink_config(dir, {sink_table(sys.proxy_url(vm.write_path()), "")});
  sys.start_agent({"--config", config});

  phase("healthy, with an oddly named burner", 2s);
  sys.burn_odd(300);
  phase("healthy", 5s);
  sys.proxy().set_mode(FaultProxy::Mode::error_500);
  phase("500 responses", 4s);
  sys.proxy().set_mode(FaultProxy::Mode::throttle_429);
  phase("429 with Retry-After", 4s);
  sys.proxy().set_slow_delay_ms(4000);  // longer than the 3 s timeout: sent again
  sys.proxy().set_mode(FaultProxy::Mode::slow);
  phase("responses slower than the timeout", 8s);
  sys.proxy().set_mode(FaultProxy::Mode::reset_body);
  phase("connections reset mid-body", 4s);
  sys.proxy().set_mode(FaultProxy::Mode::pass);
  sys.kill_agent();  // SIGKILL: the counters must come back from their file
  sys.start_agent({"--config", config});
  phase("tallyd restarted", 4s);
  vm.server().stop();
  phase("VictoriaMetrics down", 5s);
  ASSERT_TRUE(vm.server().start()) << vm.server().error();
  phase("healthy after the restart", 6s);

  const auto status = sys.status();
  EXPECT_EQ(status["sinks"][0]["format"], "remote_write");
  sys.flush_and_stop();
  EXPECT_GT(sys.proxy().faulted(), 5u);
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);
  ASSERT_TRUE(std::filesystem::exists(dir / "outbox.db.sink-rw.counters"));

  const StoredSeries stored = vm.stored();
  std::map<std::pair<std::uint64_t, std::uint64_t>, int> pid_uses;
  for (const auto& j : sys.committed()) {
    if (j["kind"] == "process") ++pid_uses[{j["ts_ns"], j["pid"]}];
  }
  std::size_t checked = 0, failed = 0, hosts = 0;
  bool saw_odd = false;
  for (const auto& j : sys.committed()) {
    std::string key;
    std::uint64_t expected_ns = 0;
    if (j["kind"] == "process") {
      if (pid_uses[{j["ts_ns"], j["pid"]}] > 1) continue;  // a reused pid: in the remainder
      key = series_key("tally_process_cpu_seconds_total", process_labels(j));
      expected_ns = j["cpu_ns"];
      if (j["comm"] == kOddBurnerName) saw_odd = true;
    } else if (j["kind"] == "host") {
      key = series_key("tally_host_cpu_busy_seconds_total", {{"host", j["host"]}});
      expected_ns = j["busy_ns"];
      ++hosts;
    } else {
      continue;
    }
    ++checked;
    const Increase inc = increase_at(stored, key, to_ms(j["ts_ns"]));
    if (!inc.value || !seconds_match(*inc.value, expected_ns)) {
      if (++failed <= 5) {
        ADD_FAILURE() << key << " @" << j["ts_ns"] << ": "
                      << (inc.value ? std::to_string(*inc.value * 1e9) + " ns stored, " +
                                          std::to_string(expected_ns) + " committed"
                                    : inc.problem);
      }
    }
  }
  EXPECT_EQ(failed, 0u) << "of " << checked << " lines checked";
  EXPECT_GT(hosts, 25u);
  EXPECT_TRUE(saw_odd) << "the burner named \"" << kOddBurnerName << "\" was not seen";
  // A restart of tallyd is no counter reset: the host's busy counter only grows.
  const auto& busy = stored.at(
      series_key("tally_host_cpu_busy_seconds_total", {{"host", sys.committed().front()["host"]}}));
  double previous = 0;
  for (const auto& [ts, values] : busy) {
    EXPECT_GE(values.front(), previous) << "busy counter went back at " << ts;
    previous = values.front();
  }
  std::printf("[%zu lines checked, %zu series stored]\n", checked, stored.size());
}

// Per interval (committed host line): the process CPU of all lines, and per
// comm.
struct IntervalTotals {
  std::int64_t host_process_ns = 0;  // the host line's busy_ns - unaccounted_ns
  std::uint64_t all_ns = 0;
  std::map<std::string, std::uint64_t> by_comm;
};

TEST(RemoteWriteSink, PrometheusWithTopProcessesKeepsEveryIntervalsBooksThroughFaults) {
  TALLY_REQUIRE_BPF();
  ASSERT_FALSE(find_program("prometheus").empty())
      << "prometheus is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  PrometheusServer prom(dir, {"4h", false});
  ASSERT_TRUE(prom.server().start()) << prom.server().error();
  SinkSystem sys(dir, prom.port());
  const std::string config =
      write_sink_config(dir, {sink_table(sys.proxy_url(prom.write_path()),
                                         "processes = \"top\"\ntop_n = 3\nmax_groups = 1000\n")});
  {
    std::ofstream out(config, std::ios::app);
    out << "[[group]]\nname = \"burners\"\ncomm = \"^(b,u=r|tally_test_bu)\"\n";
  }
  sys.start_agent({"--config", config});
  phase("healthy, with burners", 1s);
  sys.burn_odd(300);
  phase("healthy", 4s);
  sys.proxy().set_mode(FaultProxy::Mode::error_500);
  phase("500 responses", 3s);
  sys.proxy().set_mode(FaultProxy::Mode::throttle_429);
  phase("429 with Retry-After", 3s);
  sys.proxy().set_mode(FaultProxy::Mode::reset_body);
  phase("connections reset mid-body", 3s);
  sys.proxy().set_mode(FaultProxy::Mode::pass);
  prom.server().stop();
  phase("Prometheus down", 4s);
  ASSERT_TRUE(prom.server().start()) << prom.server().error();
  sys.burn_odd(200);
  phase("healthy after the restart", 6s);
  const auto status = sys.status();
  sys.flush_and_stop();
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);
  EXPECT_EQ(status["sinks"][0]["samples_rejected"], 0) << status.dump();

  // Per interval: every process line, all of them and per comm.
  std::map<std::uint64_t, IntervalTotals> intervals;
  std::map<std::uint64_t, std::vector<const json*>> lines_at;
  std::string host;
  for (const auto& j : sys.committed()) {
    if (j["kind"] == "host") {
      intervals[j["ts_ns"]].host_process_ns =
          j["busy_ns"].get<std::int64_t>() - j["unaccounted_ns"].get<std::int64_t>();
      host = j["host"];
    }
  }
  // With top, a comm has a group of its own only when one of its processes
  // lived through the interval; the others are summed in "(other groups)".
  std::map<std::uint64_t, std::set<std::string>> old_comms;
  for (const auto& j : sys.committed()) {
    if (j["kind"] == "process" && j["start_time_ns"].get<std::uint64_t>() +
                                          j["interval_ns"].get<std::uint64_t>() + 2'000'000'000 <=
                                      j["ts_ns"].get<std::uint64_t>()) {
      const std::string comm = utf8_sanitized(j["comm"].get<std::string>());
      old_comms[j["ts_ns"]].insert(comm.empty() ? "(none)" : comm);
    }
  }
  for (const auto& j : sys.committed()) {
    if (j["kind"] != "process") continue;
    auto& t = intervals[j["ts_ns"]];
    t.all_ns += j["cpu_ns"].get<std::uint64_t>();
    std::string comm = utf8_sanitized(j["comm"].get<std::string>());
    if (comm.empty()) comm = "(none)";  // a process gone before its name was read
    t.by_comm[old_comms[j["ts_ns"]].count(comm) ? comm : "(other groups)"] +=
        j["cpu_ns"].get<std::uint64_t>();
    lines_at[j["ts_ns"]].push_back(&j);
  }
  const StoredSeries stored = prom.stored();
  std::size_t checked = 0, failed = 0, max_processes = 0;
  for (const auto& [ts_ns, totals] : intervals) {
    const std::int64_t ts = to_ms(ts_ns);
    // The lines shipped as series of their own are those with a sample at
    // ts that is an increase; a series' first sample is its start (the
    // value before the interval it was first shipped in), not one.
    double sum = 0;
    std::size_t shipped = 0;
    std::map<std::string, double> shipped_by_comm;
    for (const json* j : lines_at[ts_ns]) {
      const std::string key = series_key("tally_process_cpu_seconds_total", process_labels(*j));
      const auto& points = points_of(stored, key);
      const auto at = points.find(ts);
      if (at == points.end() || at == points.begin()) continue;
      const Increase inc = increase_at(stored, key, ts);
      // A sample that repeats the value before it starts the series again
      // before an interval it was shipped in: the line was in the remainder.
      if (inc.value == 0.0) continue;
      ++checked;
      if (!inc.value || !seconds_match(*inc.value, (*j)["cpu_ns"].get<std::uint64_t>())) {
        if (++failed <= 5) {
          ADD_FAILURE() << key << " @" << ts << ": "
                        << (inc.value ? std::to_string(*inc.value * 1e9) : inc.problem)
                        << " against " << (*j)["cpu_ns"] << " ns committed";
        }
        continue;
      }
      sum += *inc.value;
      ++shipped;
      const std::string comm = utf8_sanitized((*j)["comm"].get<std::string>());
      shipped_by_comm[comm.empty() ? "(none)" : comm] += *inc.value;  // old: named
    }
    max_processes = std::max(max_processes, shipped);
    // Every process line together is the host's process CPU.
    EXPECT_EQ(static_cast<std::int64_t>(totals.all_ns), totals.host_process_ns) << "@" << ts;
    const Increase other =
        increase_at(stored, series_key("tally_other_cpu_seconds_total", {{"host", host}}), ts);
    ++checked;
    if (!other.value || !seconds_match(sum + *other.value, totals.all_ns)) {
      if (++failed <= 5) {
        ADD_FAILURE() << "interval " << ts << ": shipped " << sum * 1e9 << " ns + other "
                      << (other.value ? std::to_string(*other.value * 1e9) : other.problem)
                      << " != " << totals.all_ns << " ns committed";
      }
    }
    // Per comm group: its total, and shipped + its remainder.
    for (const auto& [comm, ns] : totals.by_comm) {
      const std::map<std::string, std::string> labels{
          {"by", "comm"}, {"group", comm}, {"host", host}};
      const Increase total =
          increase_at(stored, series_key("tally_group_cpu_seconds_total", labels), ts);
      const Increase rest =
          increase_at(stored, series_key("tally_group_other_cpu_seconds_total", labels), ts);
      ++checked;
      if (!total.value || !rest.value || !seconds_match(*total.value, ns) ||
          !seconds_match(shipped_by_comm[comm] + *rest.value, ns)) {
        if (++failed <= 5) {
          ADD_FAILURE() << "group comm=" << comm << " @" << ts << ": "
                        << (total.value ? std::to_string(*total.value * 1e9) : total.problem)
                        << " / " << (rest.value ? std::to_string(*rest.value * 1e9) : rest.problem)
                        << " against " << ns << " ns committed";
        }
      }
    }
  }
  EXPECT_EQ(failed, 0u) << "of " << checked << " books checked";
  std::printf("[%zu books checked over %zu intervals]\n", checked, intervals.size());
  EXPECT_GT(intervals.size(), 20u);
  EXPECT_LE(max_processes, 3u + 2u);  // top 3, plus a reused pid's exited one at most
  // The [[group]] rule's group is there.
  bool burners = false;
  for (const auto& [key, points] : stored) {
    if (key.find("group=\"burners\"") != std::string::npos) burners = true;
  }
  EXPECT_TRUE(burners);
}

// A backlog: `hours` of 1-minute intervals ending now, in an outbox of its
// own, shipped by a Shipper with the remote write format.
struct Backlog {
  TempDir& dir;
  std::unique_ptr<queue::Outbox> outbox;
  std::vector<std::uint64_t> interval_ts;

  Backlog(TempDir& d, int intervals) : dir(d) {
    queue::OutboxOptions o;
    o.path = dir / "backlog.db";
    o.sinks = {"rw"};
    auto opened = queue::Outbox::open(o, realtime_ns());
    if (!opened.ok()) return;
    EXPECT_TRUE(opened.ok()) << opened.error().message();
    outbox = std::move(*opened);
    const std::uint64_t minute = 60'000'000'000ULL;
    const std::uint64_t now = realtime_ns() / minute * minute;
    for (int k = intervals; k >= 1; --k) {
      const std::uint64_t ts = now - static_cast<std::uint64_t>(k - 1) * minute;
      samples::ProcessSample p;
      p.ts_ns = ts;
      p.interval_ns = minute;
      p.host = "backlog-host";
      p.pid = 4242;
      p.start_time_ns = now - 10 * minute * 60;
      p.comm = "steady";
      p.cpu_ns = 1'000'000'000ULL + static_cast<std::uint64_t>(k);
      samples::HostSample h;
      h.ts_ns = ts;
      h.interval_ns = minute;
      h.host = "backlog-host";
      h.ncpu = 1;
      h.busy_ns = p.cpu_ns;
      h.processes = 1;
      const std::vector<std::string> lines{samples::to_json_line(p), samples::to_json_line(h)};
      EXPECT_TRUE(outbox->append(lines, realtime_ns()).ok());
      interval_ts.push_back(ts);
    }
  }

  queue::OutboxStats stats() const {
    auto s = outbox->stats(realtime_ns());
    EXPECT_TRUE(s.ok());
    return s.ok() ? *s : queue::OutboxStats{};
  }

  // Ships until the outbox is empty for the sink (or 120 s pass).
  shipping::SinkStatus ship(const std::string& url) {
    shipping::ShipperOptions o;
    o.sink = "rw";
    o.url = url;
    o.agent_id = outbox->agent_id();
    o.backoff.base = std::chrono::milliseconds(100);
    o.backoff.cap = std::chrono::seconds(1);
    shipping::RemoteWriteOptions f;
    f.state_path = dir / "backlog.counters";
    shipping::Shipper shipper(
        *outbox, o, std::make_unique<shipping::RemoteWriteFormat>(f, shipping::GroupMatcher()));
    shipper.start();
    for (int i = 0; i < 1200 && stats().pending_batches > 0; ++i) {
      std::this_thread::sleep_for(100ms);
    }
    shipper.stop();
    return shipper.status();
  }
};

TEST(RemoteWriteSink, AThreeHourBacklogReplaysIntoPrometheusWithAnOutOfOrderWindow) {
  ASSERT_FALSE(find_program("prometheus").empty())
      << "prometheus is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  PrometheusServer prom(dir, {"4h", true});
  ASSERT_TRUE(prom.server().start()) << prom.server().error();
  ASSERT_TRUE(prom.wait_for_own_scrape());  // its head is at now, as a live one's is
  Backlog backlog(dir, 180);
  const auto status = backlog.ship(prom.url(prom.write_path()));
  EXPECT_EQ(backlog.stats().pending_batches, 0u);
  EXPECT_EQ(status.samples_rejected, 0u) << status.last_error;
  EXPECT_EQ(status.old_samples_refused, 0u) << status.old_data_reason;
  const StoredSeries stored = prom.stored();
  const std::string key =
      series_key("tally_process_cpu_seconds_total",
                 {{"comm", "steady"}, {"host", "backlog-host"}, {"pid", "4242"}});
  std::size_t found = 0;
  for (std::size_t k = 0; k < backlog.interval_ts.size(); ++k) {
    const Increase inc = increase_at(stored, key, to_ms(backlog.interval_ts[k]));
    const std::uint64_t expected = 1'000'000'000ULL + (backlog.interval_ts.size() - k);
    if (inc.value && seconds_match(*inc.value, expected)) {
      ++found;
    } else if (found + 5 > k) {
      ADD_FAILURE() << "interval " << k << ": " << inc.problem;
    }
  }
  EXPECT_EQ(found, 180u);
}

TEST(RemoteWriteSink, WithoutTheWindowPrometheusRefusesTheOldPartWhichIsReportedWithItsReason) {
  ASSERT_FALSE(find_program("prometheus").empty())
      << "prometheus is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  PrometheusServer prom(dir, {"", true});
  ASSERT_TRUE(prom.server().start()) << prom.server().error();
  ASSERT_TRUE(prom.wait_for_own_scrape());
  Backlog backlog(dir, 180);
  const auto status = backlog.ship(prom.url(prom.write_path()));
  EXPECT_EQ(backlog.stats().pending_batches, 0u);
  // The part older than its head's hour is refused, named and counted; the
  // last hour is stored.
  EXPECT_GT(status.old_samples_refused, 100u);
  EXPECT_EQ(status.old_samples_refused, status.samples_rejected);
  EXPECT_NE(status.old_data_reason.find("out of bounds"), std::string::npos)
      << status.old_data_reason;
  const auto gaps = backlog.stats();
  EXPECT_GT(gaps.gaps[static_cast<int>(queue::GapReason::rejected)].samples, 100u);
  EXPECT_GT(gaps.dead_letters, 50u);
  const StoredSeries stored = prom.stored();
  const std::string key =
      series_key("tally_host_cpu_busy_seconds_total", {{"host", "backlog-host"}});
  ASSERT_TRUE(stored.count(key));
  EXPECT_GT(stored.at(key).size(), 40u);  // the last hour's intervals
  EXPECT_LT(stored.at(key).size(), 70u);
}

TEST(RemoteWriteSink, AForkStormMakesNoProcessSeriesOfItsOwnWithTop) {
  TALLY_REQUIRE_BPF();
  ASSERT_FALSE(find_program("victoria-metrics").empty())
      << "victoria-metrics is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  VictoriaMetricsServer vm(dir);
  ASSERT_TRUE(vm.server().start()) << vm.server().error();
  SinkSystem sys(dir, vm.port());
  constexpr int kTopN = 5;
  const std::string config =
      write_sink_config(dir, {sink_table(sys.proxy_url(vm.write_path()),
                                         "processes = \"top\"\ntop_n = " + std::to_string(kTopN) +
                                             "\nmax_groups = 10\n")});
  sys.start_agent({"--config", config});
  phase("healthy", 2s);
  // 10,000 short-lived children, one after another, each burning 1 ms.
  const RunResult storm = run({BURNER_PATH, "children", "10000", "1"}, 120s);
  ASSERT_EQ(storm.exit_code, 0) << storm.err;
  phase("after the storm", 3s);
  sys.flush_and_stop();
  std::set<std::uint64_t> pids;
  for (const auto& j : sys.committed()) {
    if (j["kind"] == "process") pids.insert(j["pid"].get<std::uint64_t>());
  }
  EXPECT_GT(pids.size(), 10000u);  // processes = "all" would make this many series
  // The storm's children, as the burner lists them.
  std::set<std::string> children;
  const nlohmann::json listed = nlohmann::json::parse(storm.out, nullptr, false);
  ASSERT_TRUE(listed.contains("children")) << storm.out.substr(0, 200);
  for (const auto& c : listed["children"]) {
    children.insert(std::to_string(c["pid"].get<std::uint64_t>()));
  }
  ASSERT_EQ(children.size(), 10000u);
  const nlohmann::json process_series = vm.series("tally_process_cpu_seconds_total");
  std::size_t child_series = 0;
  for (const auto& labels : process_series) {
    // By pid and name: pids wrap, and a compiler or a kworker may get one a
    // child had.
    if (children.count(labels.value("pid", "")) &&
        labels.value("comm", "").rfind("tally_test_bu", 0) == 0) {
      ++child_series;
    }
  }
  const std::size_t all_series = vm.series("tally_.*").size();
  // No child has a series of its own, whatever the fork rate. What series
  // there are come from the top N and the long-lived processes that rose
  // into it (on a busy CI machine, compilers of a few seconds: 29 once),
  // and from the groups, bounded by max_groups: far fewer than processes.
  EXPECT_EQ(child_series, 0u);
  EXPECT_LT(all_series, 1000u) << "of " << pids.size() << " processes";
  std::printf("[%zu processes committed; %zu process series, %zu series in all]\n", pids.size(),
              process_series.size(), all_series);
}

}  // namespace
}  // namespace tally::test
