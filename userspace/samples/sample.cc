#include "samples/sample.h"

#include <functional>
#include <initializer_list>
#include <string_view>

#include <algorithm>
#include <cmath>

namespace tally::samples {

namespace {

// Chains a hash through each name, then through the container and pod fields.
template <typename Line>
std::uint64_t digest(std::initializer_list<const std::string*> names, const Line& line) {
  const std::hash<std::string_view> hash;
  std::uint64_t h = 0;
  for (const std::string* name : names) h = h * 0x9e3779b97f4a7c15ULL + hash(*name);
  for (const std::string* name : container_fields(line)) {
    h = h * 0x9e3779b97f4a7c15ULL + hash(*name);
  }
  return h;
}

}  // namespace

std::uint64_t names_digest(const ProcessSample& s) {
  return digest({&s.comm, &s.cmdline, &s.cgroup}, s);
}

std::uint64_t names_digest(const CgroupSample& s) { return digest({&s.cgroup}, s); }

std::uint64_t cpu_millionths(double cpus) {
  if (!(cpus > 0)) return 0;
  if (cpus >= 1e12) return 1'000'000'000'000'000'000ULL;
  return static_cast<std::uint64_t>(std::llround(cpus * 1e6));
}

double cpus_of_millionths(std::uint64_t millionths) {
  return static_cast<double>(millionths) / 1e6;
}

double percent(std::uint64_t part_ns, std::uint64_t whole_ns) {
  if (whole_ns == 0) return 0;
  return std::round(static_cast<double>(part_ns) * 10000.0 / static_cast<double>(whole_ns)) / 100.0;
}

double host_percent(std::uint64_t busy_ns, std::uint64_t interval_ns, std::uint32_t ncpu) {
  return percent(busy_ns, interval_ns * std::max<std::uint32_t>(ncpu, 1));
}

}  // namespace tally::samples
