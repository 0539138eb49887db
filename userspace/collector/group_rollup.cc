#include "collector/group_rollup.h"

#include <algorithm>

#include <fmt/format.h>

namespace tally::collector {

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  constexpr std::uint64_t kMax = 9223372036854775807ULL;
  return a > kMax - std::min(b, kMax) ? kMax : a + b;
}

std::string process_group(std::uint32_t pid, std::uint64_t start_time_ns) {
  return fmt::format("{}:{}", pid, start_time_ns);
}

GroupRollup::GroupRollup(std::uint64_t width_ns, std::size_t keep, std::size_t keep_processes)
    : width_ns_(std::max<std::uint64_t>(width_ns, 1)),
      keep_(keep),
      keep_processes_(keep_processes) {}

void GroupRollup::add_to(Group& g, const ProcessPoint& p) {
  g.cpu_ns = saturating_add(g.cpu_ns, p.cpu_ns);
  std::uint64_t& rss = g.rss_at[p.ts_ns];
  rss = saturating_add(rss, p.rss_bytes);
  if (g.processes.empty() || g.processes.back() != std::pair{p.pid, p.start_time_ns}) {
    g.processes.emplace_back(p.pid, p.start_time_ns);
  }
}

void GroupRollup::add(std::string_view host, const ProcessPoint& p) {
  Bucket& b = buckets_[{std::string(host), bucket_of(p.ts_ns)}];
  add_to(b.total, p);
  auto group = [&](int kind, std::string_view name) -> Group& {
    auto& groups = b.groups[kind];
    auto it = groups.find(name);
    if (it == groups.end()) it = groups.emplace(std::string(name), Group{}).first;
    return it->second;
  };
  add_to(group(0, p.comm), p);
  add_to(group(1, p.cgroup), p);
  Group& process =
      group(2, p.key.empty() ? std::string_view(process_group(p.pid, p.start_time_ns)) : p.key);
  add_to(process, p);
  if (process.label.empty()) process.label = p.comm;
}

RollupRow GroupRollup::row_of(const Group& g) {
  RollupRow r;
  r.label = g.label;
  r.cpu_ns = g.cpu_ns;
  for (const auto& [ts, rss] : g.rss_at) {
    r.rss_max = std::max(r.rss_max, rss);
    r.rss_sum = saturating_add(r.rss_sum, rss);
  }
  r.points = g.rss_at.size();
  auto processes = g.processes;
  std::sort(processes.begin(), processes.end());
  r.processes = static_cast<std::uint64_t>(std::unique(processes.begin(), processes.end()) -
                                           processes.begin());
  return r;
}

std::vector<RollupRow> GroupRollup::take_rows() {
  std::vector<RollupRow> rows;
  for (auto& [key, bucket] : buckets_) {
    // Named copies: a lambda may not capture structured bindings (C++17).
    const std::string& host = std::get<0>(key);
    const std::uint64_t start = std::get<1>(key);
    auto stamp = [&](RollupRow r, GroupKind kind) {
      r.host = host;
      r.bucket_ns = start;
      r.kind = kind;
      return r;
    };
    rows.push_back(stamp(row_of(bucket.total), GroupKind::host));
    for (int k = 0; k < kGroupKinds - 1; ++k) {
      const auto kind = static_cast<GroupKind>(k + 1);
      std::vector<std::pair<const std::string*, Group*>> order;
      order.reserve(bucket.groups[k].size());
      for (auto& [name, g] : bucket.groups[k]) order.emplace_back(&name, &g);
      // Largest first; equal CPU by name, so that the rows do not depend
      // on the order samples came in.
      std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        if (a.second->cpu_ns != b.second->cpu_ns) return a.second->cpu_ns > b.second->cpu_ns;
        return *a.first < *b.first;
      });
      const std::size_t keep = kind == GroupKind::process ? keep_processes_ : keep_;
      const std::size_t kept = keep == 0 ? order.size() : std::min(keep, order.size());
      for (std::size_t i = 0; i < kept; ++i) {
        RollupRow r = stamp(row_of(*order[i].second), kind);
        r.group = *order[i].first;
        rows.push_back(std::move(r));
      }
      if (kept == order.size()) continue;
      Group rest;
      for (std::size_t i = kept; i < order.size(); ++i) {
        Group& g = *order[i].second;
        rest.cpu_ns = saturating_add(rest.cpu_ns, g.cpu_ns);
        for (const auto& [ts, rss] : g.rss_at) {
          std::uint64_t& sum = rest.rss_at[ts];
          sum = saturating_add(sum, rss);
        }
        rest.processes.insert(rest.processes.end(), g.processes.begin(), g.processes.end());
      }
      RollupRow r = stamp(row_of(rest), kind);
      r.other = true;
      rows.push_back(std::move(r));
    }
  }
  buckets_.clear();
  return rows;
}

}  // namespace tally::collector
