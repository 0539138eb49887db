// The members of a names row's text (`"comm":"sh","cmdline":"sh -c x",
// "cgroup":"/"`, sample_chunk.h) as strings. A member that is missing or
// not a string is empty: the text was checked when it was received, and a
// damaged row must not stop a query.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

struct NamesMembers {
  std::string comm;
  std::string cmdline;
  std::string cgroup;
};

NamesMembers parse_names_members(std::string_view names);

// What rollups and series group a process sample by, from its names row.
struct ProcessGroups {
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;
  std::string comm;
  std::string cgroup;
  std::string key;  // process_group(pid, start_time_ns)
};

// Names rows read and parsed once each (a row's text never changes), up
// to `max` kept; `names_of` is "SELECT pid, start_time_ns, names FROM
// names WHERE names_id = ?1" on the caller's connection.
class ProcessGroupsCache {
 public:
  explicit ProcessGroupsCache(std::size_t max) : max_(max) {}
  // nullptr: no such row (retention deleted it with its last chunk).
  Result<const ProcessGroups*> find(sql::Statement& names_of, std::int64_t names_id);

 private:
  std::size_t max_;
  std::unordered_map<std::int64_t, ProcessGroups> kept_;
};

}  // namespace tally::collector
