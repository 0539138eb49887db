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
  std::uint64_t last_acked_seq = 0;  // 0: nothing acked yet
  std::uint64_t pending = 0;         // batches not yet done for this sink
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
  // stored batch may still refer to. Not counted against the cap: they are
  // bounded by the processes alive, plus those that exited while batches
  // that name them wait.
  std::uint64_t dictionary_entries = 0;
  std::uint64_t dictionary_bytes = 0;

  std::uint64_t stored_bytes = 0;  // what the cap is measured against
  std::uint64_t cap_bytes = 0;
  std::uint64_t file_bytes = 0;    // outbox.db + outbox.db-wal on disk
  std::uint64_t quarantine_events = 0;  // bad files moved aside when creating this outbox
  std::uint64_t quarantined_files = 0;  // <name>.corrupt-* databases beside it now
};

}  // namespace tally::queue
