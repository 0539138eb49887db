// Clocks and human-readable units shared by the daemon, the CLI and the collector.
#pragma once

#include <cstdint>
#include <string>

namespace tally {

// CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns() reads, so kernel and
// userspace timestamps can be subtracted from each other.
std::uint64_t monotonic_ns();
// CLOCK_REALTIME in ns since the Unix epoch.
std::uint64_t realtime_ns();
// CLOCK_BOOTTIME in ns: the clock of task_struct::start_boottime.
std::uint64_t boottime_ns();

// "512 B", "3.2 KiB", "17.0 MiB".
std::string human_bytes(std::uint64_t bytes);
// "850 ms", "12 s", "4 min", "3.5 h", "2 d".
std::string human_duration_ns(std::uint64_t ns);

}  // namespace tally
