// Whether the last intervals' books balance: the host's busy CPU against the
// CPU of its process lines, as `tally status` judges it.
#pragma once

#include <cstdint>
#include <deque>

namespace tally::agent {

struct IntervalBooks {
  std::uint64_t busy_ns = 0;
  std::int64_t unaccounted_ns = 0;  // busy minus every process line's CPU
};

struct BookBalance {
  std::uint64_t busy_ns = 0;
  std::int64_t unaccounted_ns = 0;  // the plain sum over the window
  // The sum with time still on its way left out: a reading of the kernel's
  // counters is not atomic, so an interval may show time (+x) that the next
  // one carries (-x). The newest interval's excess and the oldest one's
  // deficit (its +x left the window) are such time, not losses.
  std::int64_t settled_ns = 0;
  bool balanced = true;
};

// Unbalanced when the settled time is beyond a thousandth of the busy time
// and a millisecond (so an idle host's rounding is not news).
BookBalance judge_books(const std::deque<IntervalBooks>& recent);

}  // namespace tally::agent
