// A snapshot of the outbox for status pages and metrics.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tally/queue/batch.h"

namespace tally::queue {

struct SinkStats {
  std::string name;
  std::uint64_t last_acked_seq = 0;                 // 0: nothing acked yet
  std::uint64_t pending = 0;                        // batches not yet done for this sink
  std::optional<std::uint64_t> oldest_pending_seq;  // the head batch
  std::uint32_t head_attempts = 0;
  std::string head_last_error;
};

struct GapStats {
  std::uint64_t records = 0;  // gap batches written
  std::uint64_t samples = 0;  // samples lost, each counted once even if lost to several sinks
};

struct OutboxStats {
  std::string agent_id;
  int schema_version = 0;

  std::uint64_t pending_batches = 0;  // formed batches some sink is not done with
  std::uint64_t pending_bytes = 0;    // their payload bytes
  std::uint64_t staged_samples = 0;   // appended but not yet formed into a batch
  std::uint64_t staged_bytes = 0;
  std::uint64_t oldest_pending_age_ns = 0;  // now - formation time of the lowest seq
  std::uint64_t last_seq = 0;               // highest seq ever formed
  std::vector<SinkStats> sinks;             // in configured order

  std::array<GapStats, kGapReasonCount> gaps{};  // indexed by GapReason
  std::uint64_t dead_letters = 0;                // stored now
  std::uint64_t dead_letter_bytes = 0;
  std::uint64_t dead_letters_discarded = 0;  // removed to make room under the cap
  // Samples refused by failed appends: the ones already declared in gap
  // records plus those still only counted in memory (lost if the process dies
  // before the next successful append).
  std::uint64_t samples_lost_append = 0;

  // Dictionary entries (Outbox::append): live ones and retired ones some
  // stored batch may still refer to. Counted against the cap (stored_bytes
  // includes dictionary_bytes); the cap evicts batches, which frees the
  // entries only they referred to.
  std::uint64_t dictionary_entries = 0;
  std::uint64_t dictionary_bytes = 0;

  // What the cap is measured against: payloads of batches, staged samples,
  // dead letters and dictionary entries.
  std::uint64_t stored_bytes = 0;
  std::uint64_t cap_bytes = 0;  // as configured
  // cap_bytes, or what the filesystem holds after the WAL when that is less
  // (cap_limited_by_filesystem): eviction then also keeps the database's
  // used pages under it.
  std::uint64_t effective_cap_bytes = 0;
  bool cap_limited_by_filesystem = false;
  std::uint64_t filesystem_bytes = 0;       // size of the filesystem holding the outbox; 0 unknown
  std::uint64_t filesystem_free_bytes = 0;  // free on it
  std::uint64_t wal_limit_bytes = 0;        // the WAL is checkpointed at this size
  std::uint64_t file_bytes = 0;             // outbox.db + outbox.db-wal on disk
  std::uint64_t quarantine_events = 0;      // bad files moved aside when creating this outbox
  std::uint64_t quarantined_files = 0;      // <name>.corrupt-* and .foreign-* files beside it now

  // The last write failed for lack of space and none has succeeded since:
  // appends fail (counted in samples_lost_append), batches still ship, and
  // acks that could not be written are held in memory (acks_unsaved) until
  // one can. Opened without a -shm file (exclusive locking) when the disk
  // was too full to create one.
  bool disk_full = false;
  std::uint64_t acks_unsaved = 0;
  bool opened_without_shm = false;

  // The file was deleted, replaced, truncated or overwritten under this
  // outbox (file_changes times since open). last_file_change says what
  // happened and what became of the data; losses are declared by gap
  // records of reason outbox_lost (gaps[outbox_lost]).
  std::uint64_t file_changes = 0;
  std::string last_file_change;
  // Non-empty while the outbox cannot use its file (a recovery failed and
  // is retried at each append): why.
  std::string file_problem;
  // At open the file was not the one the last writer of this path left (it
  // was deleted or replaced while no one had it open): the agent id whose
  // data was declared lost by a predecessor gap record.
  std::optional<GapPredecessor> predecessor;
  std::string lock_path;  // the lock file beside the outbox (outbox_lock.h)
};

}  // namespace tally::queue
