// GET /v1/series and the ranges of GET /v1/top: CPU and RSS per group
// over time, from the rollups (minute or hour, housekeeper.h) or from the
// raw chunks, with an exact `other` so that the series of a step add up to
// the total.
//
// Source (source_for): one host over a few hours, or a step that is not
// whole minutes, reads the raw chunks (as far back as --retention-raw);
// otherwise a step of whole hours reads hour rollups, except the last two
// hours, which are not summed into hours yet and come from minute rollups;
// other whole minutes read minute rollups. A fleet-wide query never reads
// raw by default: a few hours of 100 hosts are millions of samples. The
// answer says which.
//
// RSS of a group over a step is the mean over the host's sample times in
// the step (a time at which the group had no process counts 0), summed
// over hosts.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "collector/group_rollup.h"
#include "collector/host_points.h"
#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

enum class SeriesSource { raw, minute, hour };
const char* source_name(SeriesSource s);

struct SeriesQuery {
  std::optional<std::string> host;  // nullopt: the fleet
  GroupKind group_by = GroupKind::host;
  std::uint64_t from = 0;  // ns, rounded down to the step
  std::uint64_t to = 0;    // ns, exclusive
  std::uint64_t step_ns = 60'000'000'000;
  std::uint64_t top = 10;  // groups by name; the rest is `other`
  // Only each group's sum over the whole window (GET /v1/top): one cell
  // per group, so a window may span any number of steps.
  bool totals_only = false;
  // What to read; nullopt: source_for() chooses.
  std::optional<SeriesSource> source;
  static constexpr std::uint64_t kRawWindowNs = 6 * 3600ull * 1'000'000'000;
};

// The source of a query that does not name one: raw for one host over up
// to kRawWindowNs, or for a step that is not whole minutes; otherwise hour
// rollups for a step of whole hours, minute rollups for whole minutes.
SeriesSource source_for(const SeriesQuery& q, std::uint64_t step_ns);

struct Series {
  std::string group;  // host, comm, cgroup, or "pid:start_time_ns"
  std::string host;   // group_by=process: the process's host
  std::string label;  // group_by=process: its comm
  std::uint64_t cpu_ns_total = 0;
  // One per step; nullopt where the step has no data at all (a gap).
  std::vector<std::optional<std::uint64_t>> cpu_ns;
  std::vector<std::optional<std::uint64_t>> rss_bytes;
};

struct SeriesRows {
  SeriesSource source = SeriesSource::minute;
  std::uint64_t from = 0;  // the first step's start
  std::uint64_t step_ns = 0;
  std::size_t points = 0;       // 1 with totals_only
  Series total;                 // every process of the host(s)
  std::vector<Series> named;    // largest first
  std::optional<Series> other;  // total minus the named, when anything is left
};

// Reads on the connection it is given (the query store's); `out_of_time`
// is checked between rows and chunks.
class SeriesReader {
 public:
  static Result<SeriesReader> prepare(sql::Database& db);
  Result<SeriesRows> series(const SeriesQuery& q, const std::function<bool()>& out_of_time);

  // The points a query may ask for.
  static constexpr std::uint64_t kMaxPoints = 10000;

 private:
  Status read_rollups(std::int64_t step_s, const SeriesQuery& q, std::uint64_t from,
                      std::uint64_t to, const std::function<bool()>& out_of_time,
                      const std::function<void(const RollupRow&)>& on_row);
  Status read_raw(const SeriesQuery& q, const std::function<bool()>& out_of_time,
                  const std::function<void(const RollupRow&)>& on_row);
  // A group's name and label by its id in rollup_groups.
  Status group_name(std::int64_t group_id, std::string& name, std::string& label);
  struct Host {
    std::int64_t id;  // 0: no rollups yet
    std::string name;
  };
  Result<std::vector<Host>> hosts(const SeriesQuery& q);

  sql::Statement rollups_;
  // The host totals alone, without the group columns: the fleet's chart
  // reads ~10^5 of them (a separate loop, measured 20% faster).
  sql::Statement totals_;
  sql::Statement group_;
  sql::Statement hosts_;
  sql::Statement host_;
  HostPoints points_;  // raw samples
};

}  // namespace tally::collector
