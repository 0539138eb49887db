#include "samples/sample.h"

#include <algorithm>
#include <cmath>

namespace tally::samples {

double percent(std::uint64_t part_ns, std::uint64_t whole_ns) {
  if (whole_ns == 0) return 0;
  return std::round(static_cast<double>(part_ns) * 10000.0 / static_cast<double>(whole_ns)) / 100.0;
}

double host_percent(std::uint64_t busy_ns, std::uint64_t interval_ns, std::uint32_t ncpu) {
  return percent(busy_ns, interval_ns * std::max<std::uint32_t>(ncpu, 1));
}

}  // namespace tally::samples
