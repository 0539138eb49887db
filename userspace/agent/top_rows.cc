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
// the client refuses all of it: rows past that are counted, not sent. The
// rest of the answer (host figures, the agent's summary: a few short
// strings, each cut) stays well within what is left.
constexpr std::size_t kBudget = control::kMaxResponseBytes - 16384;

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

// What a row is sorted by: its figures, and its name (the container label of
// a process, the key of a group; "" sorts last).
struct SortKey {
  std::uint64_t cpu_ns = 0, wait_ns = 0, rss_bytes = 0;
  std::uint32_t pid = 0;
  std::string name;
};

// Whether a comes before b. Ties go to the most CPU, then the lowest pid
// (or name), so that a refreshing screen does not shuffle equal rows.
bool comes_first(const SortKey& a, const SortKey& b, control::TopSort sort) {
  const auto by_cpu = [&] {
    if (a.cpu_ns != b.cpu_ns) return a.cpu_ns > b.cpu_ns;
    if (a.pid != b.pid) return a.pid < b.pid;
    return a.name < b.name;
  };
  const auto by_name = [&] {
    if (a.name != b.name) {
      if (a.name.empty() || b.name.empty()) return b.name.empty();
      return a.name < b.name;
    }
    return by_cpu();
  };
  switch (sort) {
    case control::TopSort::cpu:
      return by_cpu();
    case control::TopSort::rss:
      return a.rss_bytes != b.rss_bytes ? a.rss_bytes > b.rss_bytes : by_cpu();
    case control::TopSort::wait:
      return a.wait_ns != b.wait_ns ? a.wait_ns > b.wait_ns : by_cpu();
    case control::TopSort::pid:
      // Group rows carry pid 0: they fall through to their names.
      return a.pid != b.pid ? a.pid < b.pid : by_name();
    case control::TopSort::container:
      return by_name();
  }
  return by_cpu();
}

}  // namespace

TopRows top_rows(const std::vector<samples::ProcessSample>& processes, std::uint64_t interval_ns,
                 std::size_t n, control::TopGrouping by, control::TopSort sort) {
  TopRows out;
  std::vector<nlohmann::json> rows;
  rows.reserve(std::min(n, processes.size()));
  if (by == control::TopGrouping::process) {
    std::vector<std::pair<SortKey, const samples::ProcessSample*>> sorted;
    sorted.reserve(processes.size());
    for (const auto& p : processes) {
      sorted.emplace_back(SortKey{p.cpu_ns, p.wait_ns, p.rss_bytes, p.pid, container_label(p)}, &p);
    }
    const std::size_t take = std::min(n, sorted.size());
    std::partial_sort(
        sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(take), sorted.end(),
        [sort](const auto& a, const auto& b) { return comes_first(a.first, b.first, sort); });
    for (std::size_t i = 0; i < take; ++i) {
      const auto& p = *sorted[i].second;
      rows.push_back({{"pid", p.pid},
                      {"comm", p.comm},
                      {"cmdline", p.cmdline},
                      {"container", std::move(sorted[i].first.name)},
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
    std::vector<std::pair<SortKey, const Group*>> sorted;
    sorted.reserve(groups.size());
    for (const auto& [key, g] : groups) {
      // "-" (no container or pod) sorts by name after every named group.
      sorted.emplace_back(SortKey{g.cpu_ns, g.wait_ns, g.rss_bytes, 0, key == "-" ? "" : key}, &g);
    }
    const std::size_t take = std::min(n, sorted.size());
    std::partial_sort(
        sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(take), sorted.end(),
        [sort](const auto& a, const auto& b) { return comes_first(a.first, b.first, sort); });
    for (std::size_t i = 0; i < take; ++i) {
      const Group& g = *sorted[i].second;
      const std::string& key = sorted[i].first.name;
      rows.push_back({{"group", key.empty() ? std::string("-") : key},
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
