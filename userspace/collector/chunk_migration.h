// The schema 5 upgrade of samples: every row of schema 1 to 4's samples
// table becomes part of a chunk (sample_chunk.h), in the upgrade's
// transaction, so that a crash half-way leaves the old schema and the next
// start does it again.
#pragma once

#include <cstdint>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

struct ChunkMigration {
  std::uint64_t samples = 0;
  // Rows the collector's parser no longer accepts as they are: kept as
  // their text, with the columns the old schema had.
  std::uint64_t kept_as_text = 0;
};

// Reads the samples table (which the caller then drops) into chunks and,
// for rows that held their names in their JSON, names rows.
Result<ChunkMigration> move_sample_rows_to_chunks(sql::Database& db);

}  // namespace tally::collector
