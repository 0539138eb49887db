#include "batch_plan.h"

namespace tally::queue {
namespace {

template <typename Line>
std::uint64_t joined_size_of(std::span<const Line> lines) {
  if (lines.empty()) return 0;
  std::uint64_t bytes = lines.size() - 1;  // separators
  for (const auto& line : lines) bytes += line.size();
  return bytes;
}

}  // namespace

BatchPlan plan_batches(std::span<const StagedChunk> chunks, const BatchLimits& limits, bool flush) {
  BatchPlan plan;
  PlannedBatch current;
  auto close_current = [&](ChunkPos next) {
    plan.batches.push_back(current);
    current = PlannedBatch{next, 0, 0};
  };
  for (std::size_t c = 0; c < chunks.size(); ++c) {
    // An append (a chunk) that fits in a batch of its own is not split over
    // two: one interval's lines stay in one batch, so that encoders that
    // need a whole interval (top processes, remainders) see it whole.
    if (current.count > 0 && !chunks[c].lines.empty()) {
      const std::uint64_t chunk_bytes = joined_size_of(std::span(chunks[c].lines));
      const bool fits_alone =
          chunks[c].lines.size() <= limits.max_samples && chunk_bytes <= limits.max_bytes;
      const bool fits_here = current.count + chunks[c].lines.size() <= limits.max_samples &&
                             current.bytes + 1 + chunk_bytes <= limits.max_bytes;
      if (fits_alone && !fits_here) close_current({c, 0});
    }
    for (std::size_t l = 0; l < chunks[c].lines.size(); ++l) {
      const std::uint64_t len = chunks[c].lines[l].size();
      if (current.count > 0) {
        // Adding this line would pass a limit: what we have is a full batch.
        const bool samples_full = current.count >= limits.max_samples;
        const bool bytes_full = current.bytes + 1 + len > limits.max_bytes;
        if (samples_full || bytes_full) close_current({c, l});
      }
      if (current.count == 0) current.first = {c, l};
      current.bytes += (current.count > 0 ? 1 : 0) + len;
      ++current.count;
    }
  }
  const ChunkPos end{chunks.size(), 0};
  if (current.count > 0) {
    const bool reached = current.count >= limits.max_samples || current.bytes >= limits.max_bytes;
    if (flush || reached) {
      close_current(end);
    } else {
      plan.rest = current.first;
      plan.rest_samples = current.count;
      return plan;
    }
  }
  plan.rest = end;
  return plan;
}

std::string join_batch(std::span<const StagedChunk> chunks, const PlannedBatch& batch) {
  std::string payload;
  payload.reserve(batch.bytes);
  ChunkPos pos = batch.first;
  for (std::uint32_t i = 0; i < batch.count; ++i) {
    while (pos.line >= chunks[pos.chunk].lines.size()) pos = {pos.chunk + 1, 0};
    if (i > 0) payload.push_back('\n');
    payload.append(chunks[pos.chunk].lines[pos.line]);
    ++pos.line;
  }
  return payload;
}

std::uint64_t joined_size(std::span<const std::string> lines) { return joined_size_of(lines); }

std::uint64_t joined_size(std::span<const std::string_view> lines) { return joined_size_of(lines); }

std::vector<std::string_view> split_lines(std::string_view joined) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nl = joined.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(joined.substr(start));
      return lines;
    }
    lines.push_back(joined.substr(start, nl - start));
    start = nl + 1;
  }
}

}  // namespace tally::queue
