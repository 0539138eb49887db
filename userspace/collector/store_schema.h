// The collector database's schema and connection settings, versioned with
// PRAGMA user_version (sqlite.org/pragma.html#pragma_user_version).
//
// Tables (docs/protocol.md describes what the API derives from them):
//   agents    one row per agent_id: host, last_seq, counters, and the
//             credential it is bound to (never the token itself)
//   received  seqs received (samples batch or gap record) as disjoint
//             maximal ranges, so "missing" costs O(ranges), not O(seqs)
//   batches   one row per samples batch seq: batch_samples and how many of
//             them are stored (a partial index finds incomplete batches)
//   gaps      gap records: seqs or samples the agent declares lost
//   chunks    samples: a run of one batch's samples of one host per row,
//             as integers (sample_chunk.h), found by (agent, seq, first_idx)
//             and by time
//   store_meta  settings of the data: the widest chunk's time span
//   names     each (agent, process, names) once: the names samples refer to
//   process_names  each agent's current names of its live processes
//             (protocol version 2), with when they were last recorded
//   successions  agents that continue another's data after its outbox was
//             lost, and the predecessor's last seq they declare
//   hosts     the credential each host name belongs to
//   rollups   per (host, group, minute or hour): CPU, RSS and processes,
//             kept after the chunks (group_rollup.h, housekeeper.h)
//   rollup_dirty  buckets whose chunks changed since they were summed
//   series_hosts  the hosts that have rollups
#pragma once

#include <cstdint>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

inline constexpr std::int64_t kSchemaVersion = 6;

enum class Durability {
  full,    // synchronous=FULL: an acked batch survives power loss
  normal,  // synchronous=NORMAL: survives a collector crash, not power loss
};

// Writer connection: WAL, the chosen durability, then creates, upgrades or
// checks the schema (now_ns dates the process names an upgrade finds). Fails
// for a database written by a newer collector.
Status prepare_writer(sql::Database& db, Durability durability, std::uint64_t max_page_count,
                      std::uint64_t now_ns);

// Reader connection: settings only; the writer has made the schema.
Status prepare_reader(sql::Database& db);

}  // namespace tally::collector
