// The rows of `tally top`: the last interval's processes with most CPU, or
// its processes added up per cgroup, container or pod.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/control_protocol.h"
#include "samples/sample.h"

namespace tally::agent {

// What a person calls a process's container: namespace/pod/container when
// the kubelet named it, else the runtime and the id's first 12 digits
// (as `docker ps` shows it), else the systemd unit; "" when none.
std::string container_label(const samples::ProcessSample& p);

// The group a process belongs to for `by` (never empty: processes outside
// any container or pod share one "-" row).
std::string group_key(const samples::ProcessSample& p, control::TopGrouping by);

// Rows in `sort` order (control_protocol.h says which comes first), at most
// n of them, each a JSON object. Process rows:
// pid, comm, cmdline, container, cpu_pct, cpu_ns, wait_pct, wait_ns,
// rss_bytes, exited. Group rows: group, processes, cpu_pct, cpu_ns,
// wait_pct, wait_ns, rss_bytes. `omitted` counts rows left out because the
// answer must fit in one control response.
struct TopRows {
  nlohmann::json rows = nlohmann::json::array();
  std::size_t omitted = 0;
};
TopRows top_rows(const std::vector<samples::ProcessSample>& processes, std::uint64_t interval_ns,
                 std::size_t n, control::TopGrouping by,
                 control::TopSort sort = control::TopSort::cpu);

}  // namespace tally::agent
