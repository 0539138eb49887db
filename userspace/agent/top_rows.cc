#include "agent/top_rows.h"

#include <algorithm>
#include <map>

#include "control/control_protocol.h"

namespace tally::agent {

std::string container_label(const samples::ProcessSample& p) {
  if (!p.pod.empty()) {
    std::string label = p.pod_namespace.empty() ? p.pod : p.pod_namespace + "/" + p.pod;
    if (!p.container.empty()) label += "/" + p.container;
    return label;
  }
  if (p.container_runtime == "systemd") return p.container_id;
  if (!p.container_id.empty()) {
    const std::string runtime = p.container_runtime.empty() ? "?" : p.container_runtime;
    return runtime + ":" + p.container_id.substr(0, 12);
  }
  if (!p.pod_uid.empty()) return "pod " + p.pod_uid;
  return {};
}

std::string group_key(const samples::ProcessSample& p, control::TopGrouping by) {
  std::string key;
  switch (by) {
    case control::TopGrouping::process:
      key = std::to_string(p.pid);
      break;
    case control::TopGrouping::cgroup:
      key = p.cgroup;
      break;
    case control::TopGrouping::container:
      key = container_label(p);
      break;
    case control::TopGrouping::pod:
      if (!p.pod.empty()) {
        key = p.pod_namespace.empty() ? p.pod : p.pod_namespace + "/" + p.pod;
      } else if (!p.pod_uid.empty()) {
        key = "pod " + p.pod_uid;
      }
      break;
  }
  return key.empty() ? "-" : key;
}

namespace {

// The answer must fit in one response line (control::kMaxResponseBytes), or
// the client refuses all of it: rows past that are counted, not sent.
constexpr std::size_t kBudget = control::kMaxResponseBytes - 4096;

void add_within_budget(TopRows& out, std::vector<nlohmann::json> rows, std::size_t n) {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < rows.size() && i < n; ++i) {
    const std::size_t size =
        rows[i].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size() + 1;
    if (bytes + size > kBudget) {
      out.omitted = std::min(rows.size(), n) - i;
      return;
    }
    bytes += size;
    out.rows.push_back(std::move(rows[i]));
  }
}

}  // namespace

TopRows top_rows(const std::vector<samples::ProcessSample>& processes, std::uint64_t interval_ns,
                 std::size_t n, control::TopGrouping by) {
  TopRows out;
  std::vector<nlohmann::json> rows;
  rows.reserve(std::min(n, processes.size()));
  if (by == control::TopGrouping::process) {
    std::vector<const samples::ProcessSample*> sorted;
    sorted.reserve(processes.size());
    for (const auto& p : processes) sorted.push_back(&p);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->cpu_ns > b->cpu_ns; });
    for (std::size_t i = 0; i < sorted.size() && i < n; ++i) {
      const auto& p = *sorted[i];
      rows.push_back({{"pid", p.pid},
                      {"comm", p.comm},
                      {"cmdline", p.cmdline},
                      {"container", container_label(p)},
                      {"cpu_pct", p.cpu_pct},
                      {"cpu_ns", p.cpu_ns},
                      {"wait_pct", p.wait_pct},
                      {"wait_ns", p.wait_ns},
                      {"rss_bytes", p.rss_bytes},
                      {"exited", p.exited}});
    }
  } else {
    struct Group {
      std::size_t processes = 0;
      std::uint64_t cpu_ns = 0, wait_ns = 0, rss_bytes = 0;
    };
    std::map<std::string, Group> groups;
    for (const auto& p : processes) {
      Group& g = groups[group_key(p, by)];
      ++g.processes;
      g.cpu_ns += p.cpu_ns;
      g.wait_ns += p.wait_ns;
      g.rss_bytes += p.rss_bytes;
    }
    std::vector<std::pair<const std::string*, const Group*>> sorted;
    sorted.reserve(groups.size());
    for (const auto& [key, g] : groups) sorted.emplace_back(&key, &g);
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second->cpu_ns > b.second->cpu_ns; });
    for (std::size_t i = 0; i < sorted.size() && i < n; ++i) {
      const Group& g = *sorted[i].second;
      rows.push_back({{"group", *sorted[i].first},
                      {"processes", g.processes},
                      {"cpu_pct", samples::percent(g.cpu_ns, interval_ns)},
                      {"cpu_ns", g.cpu_ns},
                      {"wait_pct", samples::percent(g.wait_ns, interval_ns)},
                      {"wait_ns", g.wait_ns},
                      {"rss_bytes", g.rss_bytes}});
    }
  }
  add_within_budget(out, std::move(rows), n);
  return out;
}

}  // namespace tally::agent
