#include "sample.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace tally::accounting {

namespace {
std::string dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

double percent(std::uint64_t part_ns, std::uint64_t whole_ns) {
  if (whole_ns == 0) return 0;
  return std::round(static_cast<double>(part_ns) * 10000.0 / static_cast<double>(whole_ns)) /
         100.0;
}

std::string to_json_line(const ProcessSample& s) {
  nlohmann::ordered_json j;
  j["kind"] = "process";
  j["ts_ns"] = s.ts_ns;
  j["interval_ns"] = s.interval_ns;
  j["host"] = s.host;
  j["pid"] = s.pid;
  j["start_time_ns"] = s.start_time_ns;
  j["comm"] = s.comm;
  j["cmdline"] = s.cmdline;
  j["cgroup"] = s.cgroup;
  j["cpu_ns"] = s.cpu_ns;
  j["cpu_pct"] = s.cpu_pct;
  j["rss_bytes"] = s.rss_bytes;
  j["exited"] = s.exited;
  return dump(j);
}

std::string to_json_line(const HostSample& s) {
  nlohmann::ordered_json j;
  j["kind"] = "host";
  j["ts_ns"] = s.ts_ns;
  j["interval_ns"] = s.interval_ns;
  j["host"] = s.host;
  j["ncpu"] = s.ncpu;
  j["busy_ns"] = s.busy_ns;
  j["cpu_pct"] = s.cpu_pct;
  j["processes"] = s.processes;
  j["dropped_updates"] = s.dropped_updates;
  return dump(j);
}

}  // namespace tally::accounting
