// Seq range arithmetic for GET /v1/agents: which seqs of an agent were
// neither received nor declared lost. Pure.
#pragma once

#include <cstdint>
#include <vector>

namespace tally::collector {

struct SeqRange {
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive
  bool operator==(const SeqRange&) const = default;
};

// The maximal ranges of [1, last_seq] that no range of `covered` touches, in
// ascending order. `covered` may be unsorted, overlapping, and reach past
// last_seq. Time O(r log r) in the number of ranges, never in seqs.
std::vector<SeqRange> uncovered_ranges(std::uint64_t last_seq, std::vector<SeqRange> covered);

}  // namespace tally::collector
