// Gap records: their JSON payload, and which sinks get which record when
// batches are evicted. Free of I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tally/queue/batch.h"

namespace tally::queue {

// A gap record for a removed seq range (0, 0 when the samples had no seq).
GapRecord make_gap(GapReason reason, std::uint64_t first_seq, std::uint64_t last_seq,
                   std::uint64_t samples, std::string detail, std::uint64_t time_ns);

// The payload of a gap batch, one JSON object (see Batch::payload).
std::string encode_gap(const GapRecord& gap);
// The inverse of encode_gap; nullopt if `payload` is not a gap payload.
std::optional<GapRecord> decode_gap(std::string_view payload);

// A data batch removed to make room, and the sinks that had not acked it.
struct EvictedBatch {
  std::uint64_t seq = 0;
  std::uint64_t samples = 0;
  std::vector<std::int64_t> sink_ids;
};

// One gap record to form, and the sinks to deliver it to.
struct PlannedGap {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t samples = 0;
  std::vector<std::int64_t> sink_ids;
};

// Per sink, the evicted seqs it had not acked, cut into runs of consecutive
// seqs (a run never spans a seq the sink received); sinks with identical runs
// share one record. `evicted` must be in increasing seq order. For every sink,
// the samples of its records add up to the samples it lost.
std::vector<PlannedGap> plan_gaps(std::span<const EvictedBatch> evicted);

}  // namespace tally::queue
