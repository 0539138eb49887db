// The sums behind one answer of GET /v1/series (series_query.h): rows of
// rollups or of raw samples in, per step the total, each group and each
// host's sample times out. Pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "collector/group_rollup.h"

namespace tally::collector {

struct SeriesCells {
  std::vector<std::uint64_t> cpu;
  std::vector<double> rss;
  explicit SeriesCells(std::size_t points) : cpu(points), rss(points) {}
};

struct SeriesGroup {
  std::string group;
  std::string host;   // group_by=process: the process's host
  std::string label;  // group_by=process: its comm
  std::uint64_t cpu_ns_total = 0;
  SeriesCells cells;
  // A rollup group's id (rollup_groups): its name is looked up only if it
  // is shown. 0 for groups named by their rows.
  std::int64_t group_id = 0;
};

class SeriesSum {
 public:
  // Steps [from + i * step_ns, ...) for i < points; with totals_only, every
  // row counts in one cell. max_cells bounds groups times points.
  SeriesSum(GroupKind group_by, std::uint64_t from, std::uint64_t step_ns, std::size_t points,
            bool totals_only, std::uint64_t max_cells);

  // A host's rows of a step must come before its group rows of that step
  // (a group's RSS is divided by the host's sample times in the step).
  void add(const RollupRow& r);
  // Turns RSS sums into means and sorts the groups, largest CPU first.
  void finish();

  bool too_many() const { return too_many_; }
  std::size_t cells() const { return cells_; }
  const SeriesCells& total() const { return total_; }
  const std::vector<bool>& has_data() const { return has_; }
  std::vector<SeriesGroup>& groups() { return groups_; }

 private:
  struct HostSteps {
    std::string name;
    std::vector<std::uint64_t> points;
    std::vector<double> rss_sum;
  };
  std::size_t host_of(const std::string& name);
  SeriesGroup* group_of(const RollupRow& r, std::size_t host);
  std::size_t new_group(std::string name, std::string host, std::string label,
                        std::int64_t group_id);

  GroupKind group_by_;
  std::uint64_t from_;
  std::uint64_t step_ns_;
  std::uint64_t end_;
  std::size_t cells_;  // per series: points, or 1 with totals_only
  bool totals_only_;
  std::uint64_t max_cells_;
  bool too_many_ = false;
  SeriesCells total_;
  std::vector<bool> has_;
  std::vector<HostSteps> hosts_;  // by first appearance
  std::size_t last_host_ = 0;     // rows come host by host
  std::unordered_map<std::string, std::size_t> by_name_;
  std::unordered_map<std::uint64_t, std::size_t> by_id_;
  std::vector<SeriesGroup> groups_;
};

}  // namespace tally::collector
