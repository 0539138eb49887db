// The samples tallyd produces each interval, and their JSON line form.
//
// The JSON lines are the unit everything downstream handles: tallyd prints
// them with --stdout, the outbox stores them, the native protocol carries
// them, and tally-collector parses them. Field names are part of the
// protocol (docs/protocol.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tally::accounting {

struct ProcessSample {
  std::uint64_t ts_ns = 0;        // interval end, Unix epoch ns
  std::uint64_t interval_ns = 0;
  std::string host;
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;  // process start, Unix epoch ns
  std::string comm;
  std::string cmdline;
  std::string cgroup;
  std::uint64_t cpu_ns = 0;       // CPU used in this interval, all threads
  double cpu_pct = 0;             // cpu_ns / interval_ns * 100 (above 100: threads)
  std::uint64_t rss_bytes = 0;    // at interval end; 0 once exited
  bool exited = false;
};

struct HostSample {
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  std::string host;
  std::uint32_t ncpu = 0;
  std::uint64_t busy_ns = 0;      // non-idle CPU time, all CPUs
  double cpu_pct = 0;             // busy_ns / (interval_ns * ncpu) * 100
  std::uint32_t processes = 0;    // process lines in this interval
  std::uint64_t dropped_updates = 0;
};

// One interval's samples, as the sampler makes them.
struct IntervalSamples {
  std::vector<ProcessSample> processes;
  HostSample host;

  // The JSON lines, processes first and the host line last.
  std::vector<std::string> lines() const;
};

// One JSON object, no trailing newline. Strings that are not valid UTF-8
// (a command line can hold any bytes) get U+FFFD for the bad bytes.
std::string to_json_line(const ProcessSample& s);
std::string to_json_line(const HostSample& s);

// cpu_ns / interval_ns * 100, rounded to 2 decimals (0 for an empty interval).
double percent(std::uint64_t part_ns, std::uint64_t whole_ns);

}  // namespace tally::accounting
