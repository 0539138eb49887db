#include "agent/book_balance.h"

#include <algorithm>

namespace tally::agent {

BookBalance judge_books(const std::deque<IntervalBooks>& recent) {
  BookBalance b;
  for (std::size_t i = 0; i < recent.size(); ++i) {
    const std::int64_t u = recent[i].unaccounted_ns;
    b.busy_ns += recent[i].busy_ns;
    b.unaccounted_ns += u;
    if (i + 1 == recent.size()) {
      b.settled_ns += std::min<std::int64_t>(u, 0);  // its excess may come next
    } else if (i == 0) {
      b.settled_ns += std::max<std::int64_t>(u, 0);  // its deficit paid one before
    } else {
      b.settled_ns += u;
    }
  }
  const std::uint64_t magnitude =
      static_cast<std::uint64_t>(b.settled_ns < 0 ? -b.settled_ns : b.settled_ns);
  b.balanced = !(magnitude * 1000 > b.busy_ns && magnitude > 1'000'000);
  return b;
}

}  // namespace tally::agent
