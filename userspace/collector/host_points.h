// The process samples of one host in a window, with the groups they sum
// by (comm, cgroup, process) resolved from their names rows: what the
// housekeeper sums into rollups (housekeeper.h) and what a raw series
// reads (series_query.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "collector/group_rollup.h"
#include "collector/names_members.h"
#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

class HostPoints {
 public:
  static Result<HostPoints> prepare(sql::Database& db);

  struct Counts {
    std::uint64_t samples = 0;        // in the chunks read, all of them
    std::uint64_t names_missing = 0;  // process samples whose names row is gone: skipped
  };
  // Calls on_point for each process sample of `host` with from <= ts_ns <
  // to, chunk by chunk; fails with "interrupted" once out_of_time() says so.
  Result<Counts> read(std::string_view host, std::uint64_t from, std::uint64_t to,
                      const std::function<bool()>& out_of_time,
                      const std::function<void(const ProcessPoint&)>& on_point);

 private:
  sql::Statement chunks_;
  sql::Statement widest_;
  sql::Statement names_;
  ProcessGroupsCache groups_{1 << 18};  // ~100 bytes each
};

}  // namespace tally::collector
