// The batching policy, free of I/O: which staged samples go into which batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tally/queue/options.h"

namespace tally::queue {

// Samples appended together (or left over from earlier formations), in order.
struct StagedChunk {
  std::uint64_t created_ns = 0;  // when its oldest sample was appended
  std::vector<std::string_view> lines;
};

// A position in a sequence of chunks.
struct ChunkPos {
  std::size_t chunk = 0;
  std::size_t line = 0;
  friend bool operator==(const ChunkPos&, const ChunkPos&) = default;
};

struct PlannedBatch {
  ChunkPos first;
  std::uint32_t count = 0;
  std::uint64_t bytes = 0;  // payload size: lines joined by '\n'
};

struct BatchPlan {
  std::vector<PlannedBatch> batches;
  ChunkPos rest;  // first sample left staged; == end when everything is batched
  std::uint64_t rest_samples = 0;
};

// Cuts the chunks into batches of at most limits.max_samples samples and
// limits.max_bytes payload bytes (a single larger sample is a batch alone).
// A chunk (one append: one interval) that fits in a batch is never split:
// the batch before it is formed early instead.
// A batch that reached a limit is always formed; the trailing partial batch
// is formed only when `flush` (the age limit passed), otherwise it is `rest`.
BatchPlan plan_batches(std::span<const StagedChunk> chunks, const BatchLimits& limits, bool flush);

// The payload of a planned batch: its lines joined by '\n'.
std::string join_batch(std::span<const StagedChunk> chunks, const PlannedBatch& batch);

// Size of `lines` joined by '\n'.
std::uint64_t joined_size(std::span<const std::string> lines);
std::uint64_t joined_size(std::span<const std::string_view> lines);

// Splits a newline-joined record blob back into its lines (a blob holding
// one empty record is one empty line).
std::vector<std::string_view> split_lines(std::string_view joined);

}  // namespace tally::queue
