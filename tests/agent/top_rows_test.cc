// `tally top` rows: a container named as a person would name it, and groups
// that add up to the processes they hold.
#include "agent/top_rows.h"

#include <tuple>

#include <gtest/gtest.h>

namespace tally::agent {
namespace {

using control::TopGrouping;
using control::TopSort;

samples::ProcessSample process(std::uint32_t pid, std::uint64_t cpu_ns, std::uint64_t wait_ns) {
  samples::ProcessSample p;
  p.pid = pid;
  p.interval_ns = 1'000'000'000;
  p.cpu_ns = cpu_ns;
  p.cpu_pct = samples::percent(cpu_ns, p.interval_ns);
  p.wait_ns = wait_ns;
  p.wait_pct = samples::percent(wait_ns, p.interval_ns);
  p.rss_bytes = 4096;
  p.comm = "p" + std::to_string(pid);
  return p;
}

TEST(ContainerLabel, NamesThePodThenTheRuntimeIdThenTheUnit) {
  samples::ProcessSample p = process(1, 0, 0);
  EXPECT_EQ(container_label(p), "");
  p.container_runtime = "systemd";
  p.container_id = "nginx.service";
  EXPECT_EQ(container_label(p), "nginx.service");
  p.container_runtime = "docker";
  p.container_id = std::string(64, 'a');
  EXPECT_EQ(container_label(p), "docker:aaaaaaaaaaaa");
  p.pod_uid = "8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
  p.pod = "web-0";
  p.pod_namespace = "shop";
  p.container = "nginx";
  EXPECT_EQ(container_label(p), "shop/web-0/nginx");
}

TEST(TopRows, GroupsAddUpAndSortByCpu) {
  std::vector<samples::ProcessSample> ps;
  for (std::uint32_t pid = 1; pid <= 5; ++pid) {
    auto p = process(pid, pid * 100'000'000, pid * 10'000'000);
    p.cgroup = pid <= 3 ? "/a" : "/b";
    if (pid <= 3) {
      p.pod = "web-0";
      p.pod_namespace = "shop";
    }
    ps.push_back(p);
  }
  const TopRows by_cgroup = top_rows(ps, 1'000'000'000, 10, TopGrouping::cgroup);
  ASSERT_EQ(by_cgroup.rows.size(), 2u);
  // /b: pids 4 and 5, 900 ms; /a: 1 to 3, 600 ms.
  EXPECT_EQ(by_cgroup.rows[0]["group"], "/b");
  EXPECT_EQ(by_cgroup.rows[0]["processes"], 2);
  EXPECT_EQ(by_cgroup.rows[0]["cpu_ns"], 900'000'000u);
  EXPECT_DOUBLE_EQ(by_cgroup.rows[0]["cpu_pct"].get<double>(), 90.0);
  EXPECT_EQ(by_cgroup.rows[1]["wait_ns"], 60'000'000u);
  EXPECT_EQ(by_cgroup.rows[1]["rss_bytes"], 3u * 4096);

  const TopRows by_pod = top_rows(ps, 1'000'000'000, 10, TopGrouping::pod);
  ASSERT_EQ(by_pod.rows.size(), 2u);
  EXPECT_EQ(by_pod.rows[0]["group"], "-");  // outside any pod
  EXPECT_EQ(by_pod.rows[1]["group"], "shop/web-0");

  const TopRows by_process = top_rows(ps, 1'000'000'000, 2, TopGrouping::process);
  ASSERT_EQ(by_process.rows.size(), 2u);
  EXPECT_EQ(by_process.rows[0]["pid"], 5u);
  EXPECT_DOUBLE_EQ(by_process.rows[0]["wait_pct"].get<double>(), 5.0);
  EXPECT_EQ(by_process.rows[1]["pid"], 4u);
}

std::vector<std::uint32_t> pids(const TopRows& top) {
  std::vector<std::uint32_t> out;
  for (const auto& r : top.rows) out.push_back(r["pid"].get<std::uint32_t>());
  return out;
}

std::vector<std::string> groups(const TopRows& top) {
  std::vector<std::string> out;
  for (const auto& r : top.rows) out.push_back(r["group"].get<std::string>());
  return out;
}

// The sort key decides which n rows are sent, not only their order.
TEST(TopRows, SortKeysPickAndOrderTheRows) {
  std::vector<samples::ProcessSample> ps;
  // pid: cpu ms, wait ms, rss MiB, container
  const std::tuple<std::uint32_t, int, int, int, const char*> table[] = {
      {40, 900, 10, 1, ""},
      {7, 100, 300, 50, "web.service"},
      {300, 500, 20, 200, "db.service"},
      {12, 500, 0, 2, "api.service"},
  };
  for (const auto& [pid, cpu, wait, rss, unit] : table) {
    auto p = process(pid, cpu * 1'000'000ULL, wait * 1'000'000ULL);
    p.rss_bytes = static_cast<std::uint64_t>(rss) << 20;
    if (*unit) {
      p.container_runtime = "systemd";
      p.container_id = unit;
    }
    ps.push_back(p);
  }
  const auto top = [&](TopSort sort, std::size_t n) {
    return top_rows(ps, 1'000'000'000, n, TopGrouping::process, sort);
  };
  // Ties (500 ms) go to the lowest pid.
  EXPECT_EQ(pids(top(TopSort::cpu, 10)), (std::vector<std::uint32_t>{40, 12, 300, 7}));
  EXPECT_EQ(pids(top(TopSort::rss, 2)), (std::vector<std::uint32_t>{300, 7}));
  EXPECT_EQ(pids(top(TopSort::pid, 3)), (std::vector<std::uint32_t>{7, 12, 40}));
  EXPECT_EQ(pids(top(TopSort::wait, 10)), (std::vector<std::uint32_t>{7, 300, 40, 12}));
  // By name; the process in no container last.
  EXPECT_EQ(pids(top(TopSort::container, 10)), (std::vector<std::uint32_t>{12, 300, 7, 40}));

  // Group rows: figures as for processes; pid and container by name, "-" last.
  const auto by_container = [&](TopSort sort) {
    return groups(top_rows(ps, 1'000'000'000, 10, TopGrouping::container, sort));
  };
  EXPECT_EQ(by_container(TopSort::rss),
            (std::vector<std::string>{"db.service", "web.service", "api.service", "-"}));
  EXPECT_EQ(by_container(TopSort::pid),
            (std::vector<std::string>{"api.service", "db.service", "web.service", "-"}));
  EXPECT_EQ(by_container(TopSort::container), by_container(TopSort::pid));
}

}  // namespace
}  // namespace tally::agent
