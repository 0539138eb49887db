#include "collector/series_sum.h"

#include <algorithm>
#include <tuple>

namespace tally::collector {

SeriesSum::SeriesSum(GroupKind group_by, std::uint64_t from, std::uint64_t step_ns,
                     std::size_t points, bool totals_only, std::uint64_t max_cells)
    : group_by_(group_by),
      from_(from),
      step_ns_(std::max<std::uint64_t>(step_ns, 1)),
      end_(from + points * step_ns_),
      cells_(totals_only ? 1 : points),
      totals_only_(totals_only),
      max_cells_(max_cells),
      total_(cells_),
      has_(cells_) {}

std::size_t SeriesSum::host_of(const std::string& name) {
  if (last_host_ < hosts_.size() && hosts_[last_host_].name == name) return last_host_;
  for (std::size_t k = 0; k < hosts_.size(); ++k) {
    if (hosts_[k].name == name) return last_host_ = k;
  }
  hosts_.push_back(
      HostSteps{name, std::vector<std::uint64_t>(cells_), std::vector<double>(cells_)});
  return last_host_ = hosts_.size() - 1;
}

std::size_t SeriesSum::new_group(std::string name, std::string host, std::string label,
                                 std::int64_t group_id) {
  if ((groups_.size() + 1) * cells_ > max_cells_) {
    too_many_ = true;
    return groups_.size();
  }
  groups_.push_back(SeriesGroup{std::move(name), std::move(host), std::move(label), 0,
                                SeriesCells(cells_), group_id});
  return groups_.size() - 1;
}

// Groups by name (raw rows, and hosts), or by rollup group id and, for
// processes, host: the same pid and start time may be on two hosts.
SeriesGroup* SeriesSum::group_of(const RollupRow& r, std::size_t host) {
  const bool per_host = group_by_ == GroupKind::process;
  std::size_t at = groups_.size();
  if (r.kind == GroupKind::host) {
    auto [it, added] = by_name_.try_emplace(r.host, 0);
    if (added) it->second = new_group(r.host, "", "", 0);
    at = it->second;
  } else if (r.group_id != 0) {
    const std::uint64_t key =
        (static_cast<std::uint64_t>(r.group_id) << 20) | (per_host ? host & 0xfffff : 0);
    auto [it, added] = by_id_.try_emplace(key, 0);
    if (added) it->second = new_group("", per_host ? r.host : "", "", r.group_id);
    at = it->second;
  } else {
    std::string key = per_host ? r.host + "\n" + r.group : r.group;
    auto [it, added] = by_name_.try_emplace(std::move(key), 0);
    if (added) it->second = new_group(r.group, per_host ? r.host : "", r.label, 0);
    at = it->second;
  }
  return at < groups_.size() ? &groups_[at] : nullptr;
}

void SeriesSum::add(const RollupRow& r) {
  if (r.bucket_ns < from_ || r.bucket_ns >= end_) return;
  const std::size_t i =
      totals_only_ ? 0 : static_cast<std::size_t>((r.bucket_ns - from_) / step_ns_);
  const std::size_t host = host_of(r.host);
  HostSteps& h = hosts_[host];
  if (r.kind == GroupKind::host) {
    has_[i] = true;
    total_.cpu[i] = saturating_add(total_.cpu[i], r.cpu_ns);
    h.points[i] += r.points;
    h.rss_sum[i] += static_cast<double>(r.rss_sum);
    if (group_by_ != GroupKind::host) return;
    if (SeriesGroup* g = group_of(r, host)) {
      g->cpu_ns_total = saturating_add(g->cpu_ns_total, r.cpu_ns);
      g->cells.cpu[i] = saturating_add(g->cells.cpu[i], r.cpu_ns);
    }
    return;
  }
  if (r.other) return;  // in `other`: the total minus the named groups
  SeriesGroup* g = group_of(r, host);
  if (g == nullptr) return;
  g->cpu_ns_total = saturating_add(g->cpu_ns_total, r.cpu_ns);
  g->cells.cpu[i] = saturating_add(g->cells.cpu[i], r.cpu_ns);
  if (h.points[i] > 0) {
    g->cells.rss[i] += static_cast<double>(r.rss_sum) / static_cast<double>(h.points[i]);
  }
}

void SeriesSum::finish() {
  // A host's mean RSS in a step; with group_by=host, each group's.
  for (HostSteps& h : hosts_) {
    SeriesGroup* own = nullptr;
    if (group_by_ == GroupKind::host) {
      if (auto it = by_name_.find(h.name); it != by_name_.end() && it->second < groups_.size()) {
        own = &groups_[it->second];
      }
    }
    for (std::size_t i = 0; i < cells_; ++i) {
      if (h.points[i] == 0) continue;
      const double mean = h.rss_sum[i] / static_cast<double>(h.points[i]);
      total_.rss[i] += mean;
      if (own != nullptr) own->cells.rss[i] = mean;
    }
  }
  std::sort(groups_.begin(), groups_.end(), [](const SeriesGroup& a, const SeriesGroup& b) {
    if (a.cpu_ns_total != b.cpu_ns_total) return a.cpu_ns_total > b.cpu_ns_total;
    return std::tie(a.host, a.group, a.group_id) < std::tie(b.host, b.group, b.group_id);
  });
}

}  // namespace tally::collector
