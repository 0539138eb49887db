// Median and spread of repeated measurements, as every benchmark reports them.
#pragma once

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

namespace tally::bench {

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// {"median":..,"min":..,"max":..,"n":..}
inline nlohmann::json summary(std::vector<double> v) {
  if (v.empty()) return {{"median", 0}, {"min", 0}, {"max", 0}, {"n", 0}};
  std::sort(v.begin(), v.end());
  return {{"median", median(v)}, {"min", v.front()}, {"max", v.back()}, {"n", v.size()}};
}

}  // namespace tally::bench
