// Cumulative CPU per group (by cgroup, by comm, by the [[group]] rules) and
// of all process lines, for the /metrics page: the same rollups the
// time-series sinks ship (shipping/interval_rollup.h), summed since tallyd
// started, so they only grow and rate() over them is exact.
//
// Groups per dimension are bounded by max_groups per interval (the rest are
// summed into "(other groups)"), and a group not seen for an hour of
// intervals is dropped from the page. Not thread-safe: tallyd's main thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "samples/sample.h"
#include "shipping/interval_rollup.h"

namespace tally::agent {

struct GroupTotal {
  std::string by;
  std::string name;
  std::uint64_t cpu_ns = 0;
  std::uint64_t wait_ns = 0;
  std::uint32_t processes = 0;  // in the last interval it was seen in
  std::uint64_t rss_bytes = 0;  // likewise
  std::uint64_t last_seen = 0;  // interval number
};

class GroupTotals {
 public:
  GroupTotals(std::uint32_t max_groups, shipping::GroupMatcher groups)
      : max_groups_(max_groups), groups_(std::move(groups)) {}

  void add_interval(const samples::IntervalSamples& interval);

  const std::map<std::pair<std::string, std::string>, GroupTotal>& groups() const {
    return totals_;
  }
  // Every process line's CPU and wait since tallyd started.
  std::uint64_t all_cpu_ns() const { return all_cpu_ns_; }
  std::uint64_t all_wait_ns() const { return all_wait_ns_; }
  // Whether the group had process lines in the latest interval (its
  // processes and rss_bytes are that interval's; otherwise 0 now).
  bool current(const GroupTotal& g) const { return g.last_seen == interval_; }

 private:
  std::uint32_t max_groups_;
  shipping::GroupMatcher groups_;
  std::map<std::pair<std::string, std::string>, GroupTotal> totals_;
  std::uint64_t all_cpu_ns_ = 0;
  std::uint64_t all_wait_ns_ = 0;
  std::uint64_t interval_ = 0;
  std::uint64_t keep_intervals_ = 60;
};

}  // namespace tally::agent
