// What a time-series sink ships of one interval: which processes get a
// series of their own, the exact remainder of the others, and the group
// rollups (by cgroup, by comm, by the user's [[group]] rules).
//
// A TSDB pays per series, and every short-lived process with a pid label is a
// new one. With processes = "top" a sink ships, per interval and host, the
// top_n processes by CPU plus any at or above min_cpu_pct, of those that
// lived through the whole interval (started at least 2 s before it: start
// times are known to a second), so a fork storm makes no new series;
// everything else is summed into the remainder ("other"), host-wide and per
// group. Nothing is
// dropped: per interval
//     sum(shipped processes) + other == sum(all process lines)
// to the nanosecond, and the same holds inside every group. The sum of all
// process lines is the host's process CPU (HostSample: busy_ns -
// unaccounted_ns).
//
// Groups per dimension are bounded (max_groups, by CPU in the interval, ties
// by name); the rest of a dimension is summed into kMoreGroups. With top, a
// cgroup or comm gets a name of its own only once one of its processes lived
// through an interval, so a host that runs a new program (or container)
// every second makes no new series for them either.
//
// Pure functions of their inputs: the same samples give the same rollups, so
// a request sent again carries the same points.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "samples/sample.h"
#include "tally/result.h"

namespace re2 {
class RE2;
}

namespace tally::shipping {

// A [[group]] rule: processes whose `field` matches `pattern` (RE2, partial
// match unless anchored) belong to group `name`. The first rule that matches
// wins; a process no rule matches is in kUnmatched.
struct GroupRule {
  enum class Field { comm, cmdline, cgroup };
  std::string name;
  Field field = Field::comm;
  std::string pattern;
};

// "comm", "cmdline", "cgroup".
const char* group_field_name(GroupRule::Field field);

// Rules compiled once per sink; RE2 runs in time linear in the input, so a
// hostile command line cannot make matching slow.
class GroupMatcher {
 public:
  // Fails naming the rule (by its index and name) whose pattern does not compile.
  static Result<GroupMatcher> compile(std::vector<GroupRule> rules);
  GroupMatcher();
  ~GroupMatcher();
  GroupMatcher(GroupMatcher&&) noexcept;
  GroupMatcher& operator=(GroupMatcher&&) noexcept;

  bool empty() const { return rules_.empty(); }
  // The name of the first rule matching the process, or kUnmatched.
  std::string_view group_of(const samples::ProcessSample& p) const;

 private:
  std::vector<GroupRule> rules_;
  std::vector<std::unique_ptr<re2::RE2>> compiled_;
};

inline constexpr std::string_view kUnmatched = "(unmatched)";
inline constexpr std::string_view kMoreGroups = "(other groups)";
// The group of processes with no cgroup or no comm (an exit before it was
// read): a label value must not be empty, or the label would be dropped.
inline constexpr std::string_view kNoName = "(none)";

struct RollupOptions {
  bool top = false;  // processes = "top"; false: "all"
  std::uint32_t top_n = 20;
  double min_cpu_pct = 0;         // with top: also ship any process at or above this; 0: off
  std::uint32_t max_groups = 50;  // per dimension
  // Ship at most one process per pid and interval (a pid reused within the
  // interval): formats whose series are named by pid, and so cannot tell
  // the two apart, count the exited one in the remainder.
  bool one_per_pid = false;
  const GroupMatcher* groups = nullptr;  // [[group]] rules; none: no "group" dimension
};

struct Usage {
  std::uint64_t cpu_ns = 0;
  std::uint64_t wait_ns = 0;
  std::uint64_t rss_bytes = 0;
  std::uint32_t processes = 0;
  void add(const samples::ProcessSample& p);
  void add(const Usage& other);
  friend bool operator==(const Usage&, const Usage&) = default;
};

struct GroupRollup {
  std::string_view by;  // "cgroup", "comm" or "group"
  std::string name;
  Usage total;
  Usage other;  // the part of total not in shipped process series
};

struct IntervalRollup {
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  std::string host;
  // Indices (into the samples given) of the interval's process lines, and of
  // those shipped as series of their own; both in sample order.
  std::vector<std::uint32_t> lines;
  std::vector<std::uint32_t> shipped;
  Usage all;                        // every process line of the interval
  Usage other;                      // those not shipped
  std::vector<GroupRollup> groups;  // by dimension, then name
  // Index of the interval's host line, if it has one in the samples given;
  // derived series travel with it.
  bool has_host = false;
  std::uint32_t host_index = 0;
  // Whether the host line is there and every process line it counts is in
  // the samples given. An interval split over two batches (only when one
  // interval passes the outbox's batch limits) is shipped process by
  // process, without remainder or groups.
  bool complete = false;
};

// The intervals in `samples` (a batch, in append order: an interval's
// process lines, then its cgroup lines, then its host line), in order.
// Process lines after the last host line belong to an interval the batch
// does not finish; they come as one incomplete rollup with every process
// shipped.
std::vector<IntervalRollup> roll_up(std::span<const samples::Sample> samples,
                                    const RollupOptions& options);

// For encoders that go sample by sample (influx, OTLP): whether each sample
// is sent (process lines not shipped are not; every other line is), and
// the rollup to send beside each host line.
struct RollupPlan {
  std::vector<IntervalRollup> rollups;
  std::vector<bool> sent;                      // by sample index
  std::vector<const IntervalRollup*> at_host;  // by sample index; null but at host lines
};
RollupPlan plan_rollups(std::span<const samples::Sample> samples, const RollupOptions& options);

}  // namespace tally::shipping
