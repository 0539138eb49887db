// A warning that may repeat at the rate clients choose (a refused request,
// say): the first is logged at once, later ones at most once per interval,
// each line saying how many were not logged since the one before, so a
// flood costs a line a minute, not a line a request.
//
// Thread safety: none; used from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "tally/log.h"

namespace tally::collector {

class ThrottledWarning {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ThrottledWarning(Clock::duration interval) : interval_(interval) {}

  void note(std::string_view message, Clock::time_point now = Clock::now()) {
    if (last_ && now - *last_ < interval_) {
      ++unlogged_;
      return;
    }
    if (unlogged_ > 0) {
      log::warning("{} ({} more like it since the last such line)", message, unlogged_);
    } else {
      log::warning("{}", message);
    }
    last_ = now;
    unlogged_ = 0;
  }

 private:
  Clock::duration interval_;
  std::optional<Clock::time_point> last_;
  std::uint64_t unlogged_ = 0;
};

}  // namespace tally::collector
