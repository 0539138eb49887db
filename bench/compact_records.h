// A prototype of a compact stored form for samples, kept to measure what the
// outbox append would cost if tallyd committed binary records instead of
// JSON lines (bench/outbox_bench.cc, BM_AppendCompact1000). tallyd does not
// use it.
//
// Each sample becomes one record of a few bytes: its interval, its process
// (a small key) and its numbers. What repeats from interval to interval, a
// process's pid, start time and names, goes into dictionary entries written
// once per process incarnation (again after an exec), and the interval's
// time, length and host into one entry per interval. The decoder turns the
// records back into the exact JSON lines tallyd commits today, which is how
// the benchmark checks that nothing was left out.
//
// Numbers are written 6 bits to a byte: continuation bytes 0x80-0xBF, the
// last byte 0x40-0x7F. No byte of a record is below 0x40, so a record never
// holds the '\n' that separates the outbox's records.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sampler.h"
#include "tally/result.h"

namespace tally::bench {

struct CompactInterval {
  std::vector<std::string> records;  // one per sample, the host's last
  std::vector<std::string> entries;  // dictionary entries this interval adds
};

class CompactEncoder {
 public:
  CompactInterval encode(const accounting::IntervalSamples& interval);

 private:
  struct Known {
    std::uint64_t key = 0;
    std::string comm, cmdline, cgroup;
  };
  std::map<std::pair<std::uint32_t, std::uint64_t>, Known> known_;  // by (pid, start)
  std::uint64_t next_key_ = 1;
  std::uint64_t next_interval_ = 1;
};

class CompactDecoder {
 public:
  // Learns the entries, then decodes the records.
  Result<accounting::IntervalSamples> decode(const CompactInterval& interval);

 private:
  struct Names {
    std::uint32_t pid = 0;
    std::uint64_t start_time_ns = 0;
    std::string comm, cmdline, cgroup;
  };
  struct Header {
    std::uint64_t ts_ns = 0, interval_ns = 0;
    std::string host;
  };
  Status learn(std::string_view entry);
  std::unordered_map<std::uint64_t, Names> names_;
  std::unordered_map<std::uint64_t, Header> headers_;
};

}  // namespace tally::bench
