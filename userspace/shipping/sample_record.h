// A committed sample line (userspace/accounting/sample.cc, docs/protocol.md)
// read back into typed fields, for the formats that re-encode samples for
// another server (influx, otlp) instead of forwarding the lines as they are.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tally/result.h"

namespace tally::shipping {

struct SampleRecord {
  enum class Kind { process, host, other };
  Kind kind = Kind::other;  // other: a kind this tallyd does not know; skipped
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  std::string host;
  // kind == process
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;
  std::string comm;
  std::string cmdline;
  std::string cgroup;
  std::uint64_t cpu_ns = 0;
  double cpu_pct = 0;
  std::uint64_t rss_bytes = 0;
  bool exited = false;
  // kind == host
  std::uint32_t ncpu = 0;
  std::uint64_t busy_ns = 0;
  std::uint32_t processes = 0;
  std::uint64_t dropped_updates = 0;
};

// Parses one line. The error names the field and what was wrong; strings
// come back as the JSON held them (valid UTF-8: tallyd replaced bad bytes
// with U+FFFD when it wrote the line).
Result<SampleRecord> parse_sample(std::string_view line);

}  // namespace tally::shipping
