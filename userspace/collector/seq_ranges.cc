#include "collector/seq_ranges.h"

#include <algorithm>

namespace tally::collector {

std::vector<SeqRange> uncovered_ranges(std::uint64_t last_seq, std::vector<SeqRange> covered) {
  std::sort(covered.begin(), covered.end(),
            [](const SeqRange& a, const SeqRange& b) { return a.first < b.first; });
  std::vector<SeqRange> holes;
  std::uint64_t next = 1;  // lowest seq not yet known to be covered
  for (const SeqRange& r : covered) {
    if (next > last_seq) break;
    if (r.last < next) continue;
    if (r.first > next) holes.push_back({next, std::min(r.first - 1, last_seq)});
    next = r.last + 1;
    if (next == 0) return holes;  // r.last was the largest seq there is
  }
  if (next <= last_seq) holes.push_back({next, last_seq});
  return holes;
}

}  // namespace tally::collector
