// The rollups every time-series sink ships: the choice of processes, and the
// books: shipped + remainder == every process line, per interval and per
// group, to the nanosecond, over random intervals.
#include "shipping/interval_rollup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace tally::shipping {
namespace rollup_test {

using samples::HostSample;
using samples::ProcessSample;
using samples::Sample;

constexpr std::uint64_t kInterval = 60'000'000'000ULL;
constexpr std::uint64_t kT0 = 1'700'000'000'000'000'000ULL;

ProcessSample process(std::uint64_t ts, std::uint32_t pid, std::uint64_t cpu_ns,
                      std::string comm = "worker", std::string cgroup = "/system.slice/a") {
  ProcessSample p;
  p.ts_ns = ts;
  p.interval_ns = kInterval;
  p.host = "h";
  p.pid = pid;
  p.start_time_ns = ts - 10 * kInterval;  // lived through the interval
  p.comm = std::move(comm);
  p.cgroup = std::move(cgroup);
  p.cpu_ns = cpu_ns;
  p.cpu_pct = samples::percent(cpu_ns, kInterval);
  p.wait_ns = cpu_ns / 7;
  p.rss_bytes = 4096ULL * pid;
  return p;
}

HostSample host(std::uint64_t ts, std::uint32_t processes) {
  HostSample h;
  h.ts_ns = ts;
  h.interval_ns = kInterval;
  h.host = "h";
  h.ncpu = 4;
  h.processes = processes;
  return h;
}

// An interval of `lines` process lines then its host line.
void add_interval(std::vector<Sample>& out, std::uint64_t ts, std::vector<ProcessSample> lines) {
  const auto n = static_cast<std::uint32_t>(lines.size());
  for (auto& p : lines) out.emplace_back(std::move(p));
  out.emplace_back(host(ts, n));
}

const ProcessSample& at(const std::vector<Sample>& s, std::uint32_t i) {
  return std::get<ProcessSample>(s[i]);
}

// Every book of one rollup, checked against the samples themselves.
void expect_books_balance(const std::vector<Sample>& samples, const IntervalRollup& r,
                          const GroupMatcher* groups) {
  Usage lines, shipped, other;
  std::set<std::uint32_t> shipped_set(r.shipped.begin(), r.shipped.end());
  std::map<std::pair<std::string, std::string>, std::pair<Usage, Usage>> by_group;
  for (std::uint32_t i : r.lines) {
    const ProcessSample& p = at(samples, i);
    lines.add(p);
    const bool is_shipped = shipped_set.count(i) > 0;
    (is_shipped ? shipped : other).add(p);
    std::vector<std::pair<std::string, std::string>> keys{
        {"cgroup", p.cgroup.empty() ? std::string(kNoName) : p.cgroup},
        {"comm", p.comm.empty() ? std::string(kNoName) : p.comm}};
    if (groups != nullptr && !groups->empty()) keys.emplace_back("group", groups->group_of(p));
    for (const auto& key : keys) {
      by_group[key].first.add(p);
      if (!is_shipped) by_group[key].second.add(p);
    }
  }
  EXPECT_EQ(r.all, lines);
  EXPECT_EQ(r.other, other);
  EXPECT_EQ(shipped.cpu_ns + r.other.cpu_ns, r.all.cpu_ns);
  EXPECT_EQ(shipped.wait_ns + r.other.wait_ns, r.all.wait_ns);
  EXPECT_EQ(shipped.processes + r.other.processes, r.all.processes);
  // Per dimension, groups add up to the interval; the ones not summed
  // into kMoreGroups are exactly their members.
  std::map<std::string_view, Usage> dimension_total, dimension_other;
  for (const GroupRollup& g : r.groups) {
    dimension_total[g.by].add(g.total);
    dimension_other[g.by].add(g.other);
    if (g.name == kMoreGroups) continue;
    const auto& [total, rest] = by_group.at({std::string(g.by), g.name});
    EXPECT_EQ(g.total, total) << g.by << " " << g.name;
    EXPECT_EQ(g.other, rest) << g.by << " " << g.name;
  }
  if (!r.lines.empty()) {
    for (std::string_view by : {"cgroup", "comm"}) {
      EXPECT_EQ(dimension_total[by], r.all) << by;
      EXPECT_EQ(dimension_other[by], r.other) << by;
    }
    if (groups != nullptr && !groups->empty()) {
      EXPECT_EQ(dimension_total["group"], r.all);
    }
  }
}

TEST(IntervalRollup, TopShipsTheBusiestAndTheRestIsTheExactRemainder) {
  std::vector<Sample> s;
  add_interval(s, kT0,
               {process(kT0, 10, 5), process(kT0, 11, 900), process(kT0, 12, 50),
                process(kT0, 13, 700), process(kT0, 14, 1)});
  RollupOptions o;
  o.top = true;
  o.top_n = 2;
  const auto rollups = roll_up(s, o);
  ASSERT_EQ(rollups.size(), 1u);
  const IntervalRollup& r = rollups[0];
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.shipped, (std::vector<std::uint32_t>{1, 3}));  // 900 and 700, in sample order
  EXPECT_EQ(r.other.cpu_ns, 5u + 50 + 1);
  EXPECT_EQ(r.other.processes, 3u);
  EXPECT_EQ(r.all.cpu_ns, 1656u);
  expect_books_balance(s, r, nullptr);
}

TEST(IntervalRollup, AllShipsEveryProcessAndStillRollsUpGroups) {
  std::vector<Sample> s;
  add_interval(s, kT0, {process(kT0, 1, 10, "a"), process(kT0, 2, 20, "b")});
  const auto rollups = roll_up(s, RollupOptions{});
  ASSERT_EQ(rollups.size(), 1u);
  EXPECT_EQ(rollups[0].shipped.size(), 2u);
  EXPECT_EQ(rollups[0].other, Usage{});
  ASSERT_EQ(rollups[0].groups.size(), 3u);  // one cgroup, two comms
  EXPECT_EQ(rollups[0].groups[0].by, "cgroup");
  EXPECT_EQ(rollups[0].groups[0].total.cpu_ns, 30u);
}

TEST(IntervalRollup, MinCpuPctShipsABusyProcessBeyondTheTopN) {
  std::vector<Sample> s;
  add_interval(s, kT0,
               {process(kT0, 1, kInterval), process(kT0, 2, kInterval / 2),
                process(kT0, 3, kInterval / 100)});
  RollupOptions o;
  o.top = true;
  o.top_n = 1;
  o.min_cpu_pct = 40;  // the second runs at 50%
  EXPECT_EQ(roll_up(s, o)[0].shipped, (std::vector<std::uint32_t>{0, 1}));
}

TEST(IntervalRollup, AProcessStartedJustBeforeTheIntervalCountsAsYoung) {
  // Start times are known to a second (btime is in whole seconds): one that
  // seems to have started a second before the interval may have started in it.
  std::vector<Sample> s;
  ProcessSample edge = process(kT0, 7, kInterval);
  edge.start_time_ns = kT0 - kInterval - 1'000'000'000;
  ProcessSample old = process(kT0, 8, 10);
  old.start_time_ns = kT0 - kInterval - 2'000'000'000;
  add_interval(s, kT0, {edge, old});
  RollupOptions o;
  o.top = true;
  EXPECT_EQ(roll_up(s, o)[0].shipped, (std::vector<std::uint32_t>{1}));
}

TEST(IntervalRollup, AProcessYoungerThanTheIntervalHasNoSeriesOfItsOwnInTop) {
  std::vector<Sample> s;
  ProcessSample young = process(kT0, 7, kInterval);  // the busiest, but born in the interval
  young.start_time_ns = kT0 - kInterval / 2;
  add_interval(s, kT0, {young, process(kT0, 8, 10)});
  RollupOptions o;
  o.top = true;
  o.top_n = 5;
  const IntervalRollup r = roll_up(s, o)[0];
  EXPECT_EQ(r.shipped, (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(r.other.cpu_ns, kInterval);
  expect_books_balance(s, r, nullptr);
  // With processes = all it ships like any other.
  EXPECT_EQ(roll_up(s, RollupOptions{})[0].shipped.size(), 2u);
}

TEST(IntervalRollup, WithTopAStormOfNewProgramsMakesNoGroupsOfTheirOwn) {
  std::vector<Sample> s;
  std::vector<ProcessSample> lines{process(kT0, 1, 10, "sshd", "/system.slice/ssh.service")};
  for (std::uint32_t i = 0; i < 5; ++i) {
    ProcessSample p =
        process(kT0, 100 + i, 1000, "job-" + std::to_string(i), "/jobs/" + std::to_string(i));
    p.start_time_ns = kT0 - kInterval / 3;  // born in the interval
    lines.push_back(p);
  }
  add_interval(s, kT0, lines);
  RollupOptions o;
  o.top = true;
  const IntervalRollup r = roll_up(s, o)[0];
  std::vector<std::string> comms, cgroups;
  for (const auto& g : r.groups) (g.by == "comm" ? comms : cgroups).push_back(g.name);
  EXPECT_EQ(comms, (std::vector<std::string>{"sshd", std::string(kMoreGroups)}));
  EXPECT_EQ(cgroups,
            (std::vector<std::string>{"/system.slice/ssh.service", std::string(kMoreGroups)}));
  EXPECT_EQ(r.groups.back().total.cpu_ns, 5000u);
  expect_books_balance(s, r, nullptr);
  // With processes = all, every group has its name.
  EXPECT_EQ(roll_up(s, RollupOptions{})[0].groups.size(), 12u);
}

TEST(IntervalRollup, OnePerPidShipsTheLiveProcessOfAReusedPid) {
  std::vector<Sample> s;
  ProcessSample exited = process(kT0, 42, 500, "old");
  exited.exited = true;
  ProcessSample live = process(kT0, 42, 100, "new");
  live.start_time_ns = exited.start_time_ns + 1;
  add_interval(s, kT0, {exited, live});
  RollupOptions o;
  o.one_per_pid = true;
  const IntervalRollup r = roll_up(s, o)[0];
  EXPECT_EQ(r.shipped, (std::vector<std::uint32_t>{1}));
  EXPECT_EQ(r.other.cpu_ns, 500u);
  expect_books_balance(s, r, nullptr);
}

TEST(IntervalRollup, AnIntervalWithoutAllItsLinesShipsEveryLineAndNoDerivedSeries) {
  std::vector<Sample> s;
  s.emplace_back(process(kT0, 1, 10));
  s.emplace_back(host(kT0, 3));                     // says 3 lines; the batch has 1
  s.emplace_back(process(kT0 + kInterval, 2, 20));  // an interval the batch does not finish
  RollupOptions o;
  o.top = true;
  o.top_n = 0;
  const auto rollups = roll_up(s, o);
  ASSERT_EQ(rollups.size(), 2u);
  EXPECT_FALSE(rollups[0].complete);
  EXPECT_TRUE(rollups[0].has_host);
  EXPECT_EQ(rollups[0].shipped, (std::vector<std::uint32_t>{0}));
  EXPECT_TRUE(rollups[0].groups.empty());
  EXPECT_FALSE(rollups[1].complete);
  EXPECT_FALSE(rollups[1].has_host);
  EXPECT_EQ(rollups[1].shipped, (std::vector<std::uint32_t>{2}));
}

TEST(IntervalRollup, GroupsPastMaxGroupsAreSummedIntoOne) {
  std::vector<Sample> s;
  std::vector<ProcessSample> lines;
  for (std::uint32_t i = 0; i < 10; ++i) {
    lines.push_back(process(kT0, 100 + i, 1000 - i, "c" + std::to_string(i)));
  }
  add_interval(s, kT0, lines);
  RollupOptions o;
  o.max_groups = 3;
  const IntervalRollup r = roll_up(s, o)[0];
  std::vector<std::string> comms;
  for (const auto& g : r.groups) {
    if (g.by == "comm") comms.push_back(g.name);
  }
  EXPECT_EQ(comms, (std::vector<std::string>{"c0", "c1", "c2", std::string(kMoreGroups)}));
  expect_books_balance(s, r, nullptr);
}

TEST(IntervalRollup, RandomIntervalsBalanceToTheNanosecond) {
  auto matcher = GroupMatcher::compile({{"web", GroupRule::Field::comm, "^(nginx|httpd)$"},
                                        {"batch", GroupRule::Field::cmdline, "--batch"},
                                        {"db", GroupRule::Field::cgroup, "postgres"}});
  ASSERT_TRUE(matcher.ok()) << matcher.error().message();
  std::mt19937_64 rng(20261204);
  const std::vector<std::string> comms{"nginx", "httpd", "sh", "postgres", "cc1plus", "x", ""};
  const std::vector<std::string> cgroups{"/system.slice/nginx.service", "/system.slice/postgres",
                                         "/user.slice", "", "/kubepods/pod1/c1"};
  for (int round = 0; round < 300; ++round) {
    std::vector<Sample> s;
    const int intervals = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < intervals; ++k) {
      const std::uint64_t ts = kT0 + static_cast<std::uint64_t>(k) * kInterval;
      std::vector<ProcessSample> lines;
      const int n = static_cast<int>(rng() % 60);
      for (int i = 0; i < n; ++i) {
        ProcessSample p = process(ts, static_cast<std::uint32_t>(1 + rng() % 40),
                                  rng() % 3 == 0 ? 0 : rng() % (4 * kInterval),
                                  comms[rng() % comms.size()], cgroups[rng() % cgroups.size()]);
        if (rng() % 4 == 0) p.start_time_ns = ts - rng() % kInterval;  // young
        if (rng() % 5 == 0) p.cmdline = "job --batch";
        p.exited = rng() % 6 == 0;
        lines.push_back(std::move(p));
      }
      add_interval(s, ts, lines);
    }
    RollupOptions o;
    o.top = rng() % 4 != 0;
    o.top_n = static_cast<std::uint32_t>(rng() % 8);
    o.min_cpu_pct = rng() % 2 ? 0 : static_cast<double>(rng() % 200);
    o.max_groups = 1 + static_cast<std::uint32_t>(rng() % 5);
    o.one_per_pid = rng() % 2;
    o.groups = &*matcher;
    const auto rollups = roll_up(s, o);
    ASSERT_EQ(rollups.size(), static_cast<std::size_t>(intervals));
    for (const IntervalRollup& r : rollups) {
      ASSERT_TRUE(r.complete);
      expect_books_balance(s, r, &*matcher);
      // The shipped ones: never more than the rules allow, and none left
      // out that is busier than one shipped (among those eligible).
      if (o.top && o.min_cpu_pct == 0 && !o.one_per_pid) {
        EXPECT_LE(r.shipped.size(), o.top_n);
        std::uint64_t least_shipped = UINT64_MAX;
        for (std::uint32_t i : r.shipped) least_shipped = std::min(least_shipped, at(s, i).cpu_ns);
        for (std::uint32_t i : r.lines) {
          const ProcessSample& p = at(s, i);
          const bool old_enough = p.start_time_ns + p.interval_ns + 2'000'000'000 <= p.ts_ns;
          if (old_enough && std::find(r.shipped.begin(), r.shipped.end(), i) == r.shipped.end() &&
              r.shipped.size() == o.top_n && o.top_n > 0) {
            EXPECT_LE(p.cpu_ns, least_shipped);
          }
        }
      }
      if (o.one_per_pid) {
        std::set<std::uint32_t> pids;
        for (std::uint32_t i : r.shipped) EXPECT_TRUE(pids.insert(at(s, i).pid).second);
      }
    }
  }
}

TEST(GroupMatcher, FirstMatchingRuleWinsAndTheRestAreUnmatched) {
  auto m = GroupMatcher::compile({{"a", GroupRule::Field::comm, "^ng"},
                                  {"b", GroupRule::Field::comm, "nginx"},
                                  {"c", GroupRule::Field::cgroup, "docker"}});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->group_of(process(kT0, 1, 1, "nginx")), "a");
  EXPECT_EQ(m->group_of(process(kT0, 1, 1, "x", "/docker/abc")), "c");
  EXPECT_EQ(m->group_of(process(kT0, 1, 1, "x", "/user.slice")), kUnmatched);
}

TEST(GroupMatcher, APatternThatDoesNotCompileIsAnErrorNamingItsRule) {
  auto m = GroupMatcher::compile(
      {{"ok", GroupRule::Field::comm, "a"}, {"broken", GroupRule::Field::cmdline, "(unclosed"}});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message().find("group 2 (\"broken\")"), std::string::npos)
      << m.error().message();
  EXPECT_NE(m.error().message().find("(unclosed"), std::string::npos);
}

TEST(GroupMatcher, AHostileCommandLineIsMatchedInLinearTime) {
  // (a*)*b on a long run of a's takes exponential time in a backtracking
  // engine; RE2 answers at once. Not a timing assertion: it must finish.
  auto m = GroupMatcher::compile({{"x", GroupRule::Field::cmdline, "(a*)*b"}});
  ASSERT_TRUE(m.ok());
  ProcessSample p = process(kT0, 1, 1);
  p.cmdline = std::string(1 << 20, 'a');
  EXPECT_EQ(m->group_of(p), kUnmatched);
  p.cmdline += 'b';
  EXPECT_EQ(m->group_of(p), "x");
}

TEST(RollupPlan, MarksTheProcessesLeftOutAndTheRollupAtEachHostLine) {
  std::vector<Sample> s;
  add_interval(s, kT0, {process(kT0, 1, 5), process(kT0, 2, 50)});
  add_interval(s, kT0 + kInterval, {process(kT0 + kInterval, 1, 70)});
  RollupOptions o;
  o.top = true;
  o.top_n = 1;
  const RollupPlan plan = plan_rollups(s, o);
  EXPECT_EQ(plan.sent, (std::vector<bool>{false, true, true, true, true}));
  EXPECT_EQ(plan.at_host[2], &plan.rollups[0]);
  EXPECT_EQ(plan.at_host[4], &plan.rollups[1]);
  EXPECT_EQ(plan.at_host[0], nullptr);
}

}  // namespace rollup_test
}  // namespace tally::shipping
