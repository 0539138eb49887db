#include "samples/sample.h"

#include <functional>
#include <string_view>

#include <algorithm>
#include <cmath>

namespace tally::samples {

std::uint64_t names_digest(const ProcessSample& s) {
  const std::hash<std::string_view> hash;
  std::uint64_t h = 0;
  for (const std::string* name :
       {&s.comm, &s.cmdline, &s.cgroup, &s.container_id, &s.container_runtime, &s.pod_uid,
        &s.pod_qos, &s.pod, &s.pod_namespace, &s.container}) {
    h = h * 0x9e3779b97f4a7c15ULL + hash(*name);
  }
  return h;
}

std::uint64_t names_digest(const CgroupSample& s) {
  const std::hash<std::string_view> hash;
  std::uint64_t h = 0;
  for (const std::string* name : {&s.cgroup, &s.container_id, &s.container_runtime, &s.pod_uid,
                                  &s.pod_qos, &s.pod, &s.pod_namespace, &s.container}) {
    h = h * 0x9e3779b97f4a7c15ULL + hash(*name);
  }
  return h;
}

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
