// Readers and parsers for the /proc files tally uses. Parsers are pure
// functions of the file's text so they are unit-tested without a live process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "accounting/process_key.h"
#include "tally/result.h"

namespace tally::accounting::procfs {

// The fields of /proc/PID/stat tally needs (proc(5) numbering in comments).
struct Stat {
  std::string comm;               // (2), without the parentheses
  char state = '?';               // (3)
  std::uint32_t ppid = 0;         // (4)
  std::uint64_t utime_ticks = 0;  // (14)
  std::uint64_t stime_ticks = 0;  // (15)
  std::uint32_t num_threads = 0;  // (20)
  std::uint64_t start_ticks = 0;  // (22) since boot, in clock ticks
};

// Parses /proc/PID/stat. comm may contain spaces and ')' - the last ')' ends it.
Result<Stat> parse_stat(std::string_view text);
// First field of /proc/PID/schedstat: on-CPU ns of that task (thread).
std::optional<std::uint64_t> parse_schedstat_runtime(std::string_view text);
// Second field of /proc/PID/statm, in pages.
std::optional<std::uint64_t> parse_statm_resident_pages(std::string_view text);
// The cgroup to report: the v2 path on a pure cgroup2 host; on a hybrid or
// v1 host the first of the v2 path, the v1 cpu controller's path and the v1
// name=systemd path that is more than "/"; else "/" (or "" if none).
std::string parse_cgroup(std::string_view text);
// Command-line bytes kept per process by default ([agent] max_cmdline_bytes).
// A process can have megabytes of arguments; tallyd holds, stores and ships
// the command line of every process, so it keeps only a bounded head.
inline constexpr std::size_t kDefaultMaxCmdlineBytes = 4096;
// Ends a command line that was cut to the limit, so nobody takes the head
// for the whole.
inline constexpr std::string_view kCmdlineCutMarker = "...[truncated]";

// /proc/PID/cmdline (NUL-separated) as one display line: NULs become spaces,
// trailing NULs are dropped. Longer than max_bytes: cut to at most max_bytes
// on a UTF-8 character boundary, and kCmdlineCutMarker appended.
std::string cmdline_for_display(std::string_view raw,
                                std::size_t max_bytes = kDefaultMaxCmdlineBytes);

// System constants, read once.
std::uint64_t ns_per_tick();
std::uint64_t page_size();

// Reads a small /proc file into out (cleared first), at most max_bytes of
// it. False if the process or file is gone.
bool read_small_file(const char* path, std::string& out, std::size_t max_bytes = 1u << 20);

std::optional<Stat> read_stat(std::uint32_t pid);
std::optional<std::uint64_t> read_rss_bytes(std::uint32_t pid);
std::string read_comm(std::uint32_t pid);
// Raw, NUL-separated; enough of it for cmdline_for_display(_, max_bytes) to
// tell whether it must cut.
std::string read_cmdline(std::uint32_t pid, std::size_t max_bytes = kDefaultMaxCmdlineBytes);
std::string read_cgroup(std::uint32_t pid);
// /proc/PID/cgroup as it is; empty when unreadable.
std::string read_cgroup_text(std::uint32_t pid);

// True if /proc/PID is the incarnation started at start_ns (boottime ns),
// compared at clock-tick resolution.
bool is_same_incarnation(std::uint32_t pid, std::uint64_t start_ns);

// Boot time as Unix epoch seconds (/proc/stat "btime"), to turn boottime
// start times into wall-clock ones that stay stable across agent restarts.
std::uint64_t boot_time_epoch_ns();
// Cumulative forks since boot (/proc/stat "processes").
std::optional<std::uint64_t> read_forks_total();

// Steal time of all CPUs, in clock ticks: the 8th number of /proc/stat's
// "cpu" line (time a hypervisor ran something else while this VM's CPU
// had work).
std::optional<std::uint64_t> parse_steal_ticks(std::string_view proc_stat);
std::optional<std::uint64_t> read_steal_ns();

// Totals of a PSI file (/proc/pressure/cpu, a cgroup's cpu.pressure), in
// µs: "some" and "full" (full is 0 where the kernel does not report it).
struct PressureTotals {
  std::uint64_t some_us = 0;
  std::uint64_t full_us = 0;
};
std::optional<PressureTotals> parse_pressure(std::string_view text);
std::optional<PressureTotals> read_pressure(const char* path);

}  // namespace tally::accounting::procfs
