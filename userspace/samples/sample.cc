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

double percent(std::uint64_t part_ns, std::uint64_t whole_ns) {
  if (whole_ns == 0) return 0;
  return std::round(static_cast<double>(part_ns) * 10000.0 / static_cast<double>(whole_ns)) / 100.0;
}

double host_percent(std::uint64_t busy_ns, std::uint64_t interval_ns, std::uint32_t ncpu) {
  return percent(busy_ns, interval_ns * std::max<std::uint32_t>(ncpu, 1));
}

}  // namespace tally::samples
