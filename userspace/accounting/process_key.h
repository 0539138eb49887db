// Identity of a process incarnation.
#pragma once

#include <cstdint>
#include <functional>

namespace tally::accounting {

// A pid alone is not an identity: pids are reused. (tgid, start time) is.
// start_ns is the leader's start time in CLOCK_BOOTTIME ns (task_struct's
// start_boottime); the procfs backend only knows it to clock-tick resolution.
struct ProcessKey {
  std::uint32_t tgid = 0;
  std::uint64_t start_ns = 0;

  friend bool operator==(const ProcessKey&, const ProcessKey&) = default;
};

struct ProcessKeyHash {
  std::size_t operator()(const ProcessKey& k) const noexcept {
    // Start times differ in their low bits between processes; mixing them
    // with the pid is enough for an unordered_map.
    return std::hash<std::uint64_t>{}(k.start_ns * 0x9E3779B97F4A7C15ULL ^ k.tgid);
  }
};

}  // namespace tally::accounting
