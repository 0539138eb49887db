#include "tally/time_util.h"

#include <time.h>

#include <fmt/format.h>

namespace tally {
namespace {
std::uint64_t read_clock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}
}  // namespace

std::uint64_t monotonic_ns() { return read_clock(CLOCK_MONOTONIC); }
std::uint64_t realtime_ns() { return read_clock(CLOCK_REALTIME); }
std::uint64_t boottime_ns() { return read_clock(CLOCK_BOOTTIME); }

std::string human_bytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

std::string human_duration_ns(std::uint64_t ns) {
  const double s = static_cast<double>(ns) / 1e9;
  if (ns < 1'000'000ULL) return fmt::format("{} µs", ns / 1000);
  if (s < 1.0) return fmt::format("{} ms", ns / 1'000'000ULL);
  if (s < 60.0) return fmt::format("{:.0f} s", s);
  if (s < 3600.0) return fmt::format("{:.0f} min", s / 60.0);
  if (s < 86400.0) return fmt::format("{:.1f} h", s / 3600.0);
  return fmt::format("{:.1f} d", s / 86400.0);
}

}  // namespace tally
