// Writes received samples into the chunks table (sample_chunk.h): runs of
// consecutive indexes of one batch and one host, one row each. Used by the
// batch store for every request and by the schema upgrade that turns the
// rows of schema 4 into chunks.
//
// Beside each chunk it marks the minute and hour buckets the chunk's
// samples fall in as due for their rollups (housekeeper.h), and keeps each
// names row's last_ts_ns (the latest sample that refers to it) up to date
// within kNamesTouchNs, so that retention deletes a names row only after
// the chunks that need it: writing it for every sample would be ~1,000
// updates per batch; this is one per process per hour.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "collector/batch_request.h"
#include "collector/sample_chunk.h"
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

  // The transaction of the writes since the last call committed, or
  // rolled back: the names times it wrote hold, or are written again.
  void committed();
  void rolled_back();

  // How stale a names row's last_ts_ns may be (retention keeps rows for
  // this much longer than their chunks).
  static constexpr std::uint64_t kNamesTouchNs = 3600ull * 1'000'000'000;

 private:
  Status mark_dirty(std::string_view host, std::span<const ChunkSample> samples);
  Status touch_names(std::span<const ChunkSample> samples);
  Status insert(std::int64_t agent, std::uint64_t seq, std::string_view host,
                std::uint64_t first_index, const std::vector<ChunkSample>& samples);

  sql::Statement insert_;
  sql::Statement note_span_;
  sql::Statement mark_dirty_;
  sql::Statement touch_names_;
  // names_id -> last_ts_ns as committed, and as written in the open
  // transaction. Cleared when large: the cost is one update per process.
  std::unordered_map<std::int64_t, std::uint64_t> names_touched_;
  std::unordered_map<std::int64_t, std::uint64_t> names_pending_;
};

}  // namespace tally::collector
