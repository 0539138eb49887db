// Sums of process samples per (host, group, time bucket): what the
// collector's rollups hold (housekeeper.h) and what GET /v1/series draws
// (series_query.h). Pure: fed samples, it returns rows.
//
// A group is the host's total, one comm, one cgroup, or one process
// incarnation. Per (host, kind, bucket) only the `keep` groups with the
// most CPU are kept by name; the rest are summed into one `other` row, so
// the kept groups plus `other` add up to the host total exactly, to the
// nanosecond, while a host with 10,000 short-lived processes still writes a
// bounded number of rows per bucket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace tally::collector {

enum class GroupKind : int { host = 0, comm = 1, cgroup = 2, process = 3 };
inline constexpr int kGroupKinds = 4;

struct RollupRow {
  std::string host;
  GroupKind kind = GroupKind::host;
  std::uint64_t bucket_ns = 0;  // the bucket's start
  bool other = false;           // the sum of the groups not kept by name
  std::string group;            // comm, cgroup, or "pid:start_time_ns"; empty for host and other
  std::string label;            // process rows: the process's comm
  // As read back from the rollups table: the group's row there (group and
  // label are then left empty; the reader looks them up once per group).
  std::int64_t group_id = 0;
  std::uint64_t cpu_ns = 0;
  std::uint64_t rss_max = 0;    // the most RSS the group held at one sample time
  std::uint64_t rss_sum = 0;    // the group's RSS summed over its sample times
  std::uint64_t points = 0;     // sample times at which the group had a process
  std::uint64_t processes = 0;  // process incarnations seen
};

// One process sample, with its names resolved.
struct ProcessPoint {
  std::uint64_t ts_ns = 0;
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;
  std::uint64_t cpu_ns = 0;
  std::uint64_t rss_bytes = 0;
  std::string_view comm;
  std::string_view cgroup;
  std::string_view key;  // "pid:start_time_ns" if the caller has it made; else made here
};

// A process group's name: "pid:start_time_ns".
std::string process_group(std::uint32_t pid, std::uint64_t start_time_ns);

// CPU sums saturate at 2^63-1 ns (292 years), as everywhere in the API.
std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b);

class GroupRollup {
 public:
  // Buckets are [k * width_ns, (k + 1) * width_ns). keep: groups kept by
  // name per (host, kind, bucket), keep_processes for processes; 0 keeps
  // them all.
  GroupRollup(std::uint64_t width_ns, std::size_t keep, std::size_t keep_processes);

  void add(std::string_view host, const ProcessPoint& p);
  // Rows by (host, bucket, kind), largest CPU first, `other` last.
  std::vector<RollupRow> take_rows();
  std::uint64_t bucket_of(std::uint64_t ts_ns) const { return ts_ns - ts_ns % width_ns_; }

 private:
  struct Group {
    std::string label;
    std::uint64_t cpu_ns = 0;
    std::map<std::uint64_t, std::uint64_t> rss_at;  // sample time -> RSS summed
    std::vector<std::pair<std::uint32_t, std::uint64_t>> processes;
  };
  struct Bucket {
    Group total;
    std::map<std::string, Group, std::less<>> groups[kGroupKinds - 1];  // comm, cgroup, process
  };
  static void add_to(Group& g, const ProcessPoint& p);
  static RollupRow row_of(const Group& g);

  std::uint64_t width_ns_;
  std::size_t keep_;
  std::size_t keep_processes_;
  std::map<std::tuple<std::string, std::uint64_t>, Bucket, std::less<>> buckets_;
};

}  // namespace tally::collector
