// Writes received samples into the chunks table (sample_chunk.h): runs of
// consecutive indexes of one batch and one host, one row each. Used by the
// batch store for every request and by the schema upgrade that turns the
// rows of schema 4 into chunks.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "collector/batch_request.h"
#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

class ChunkWriter {
 public:
  static Result<ChunkWriter> prepare(sql::Database& db);

  // Stores samples[i] unless skip[i], with names_ids[i] its names row
  // (process samples); returns how many it stored. Samples must be in
  // index order.
  Result<std::uint64_t> write(std::int64_t agent, std::uint64_t seq,
                              std::span<const StoredSample> samples,
                              std::span<const std::optional<std::int64_t>> names_ids,
                              const std::vector<bool>& skip);

 private:
  sql::Statement insert_;
  sql::Statement note_span_;
};

}  // namespace tally::collector
