// The outbox's bookkeeping that is kept in memory between calls: persistent
// counters (mirrored in the meta table) and totals derived from the tables.
// Operations change a copy and adopt it only after their commit succeeds, so
// a rolled-back transaction leaves memory and disk in agreement.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tally/queue/batch.h"

namespace tally::queue {

// Persistent counters; each is one row of the meta table, keyed by name.
enum class Counter : std::size_t {
  last_seq,
  gap_records_cap,
  gap_samples_cap,
  gap_records_rejected,
  gap_samples_rejected,
  gap_records_append_failed,
  gap_samples_append_failed,
  dead_letters_discarded,
  quarantine_events,
  gap_records_outbox_lost,
  gap_samples_outbox_lost,
  count_,
};
inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::count_);

// The meta key of a counter, e.g. "gap_samples.cap".
std::string_view counter_key(Counter counter);
Counter gap_records_counter(GapReason reason);
Counter gap_samples_counter(GapReason reason);

struct SinkState {
  std::int64_t id = 0;  // sinks.id
  std::string name;
  std::uint64_t last_acked_seq = 0;
};

struct State {
  std::array<std::uint64_t, kCounterCount> counters{};

  std::uint64_t batch_count = 0;  // rows in batches
  std::uint64_t batch_bytes = 0;
  std::uint64_t batch_samples = 0;  // samples in them (what losing the file would lose)
  std::uint64_t staged_rows = 0;
  std::uint64_t staged_samples = 0;
  std::uint64_t staged_bytes = 0;      // sum of the rows' record blobs
  std::uint64_t staged_oldest_ns = 0;  // created_ns of the first row
  std::uint64_t dead_count = 0;
  std::uint64_t dead_bytes = 0;
  // Dictionary entries retired whose last batch is not known yet (records
  // were staged), and retired ones whose last batch is known: the first wait
  // for the staging to empty, the second for their batches to go.
  std::uint64_t dict_unsettled = 0;
  std::uint64_t dict_settled = 0;
  std::uint64_t dict_bytes = 0;  // sum of the rows' entries blobs, counted against the cap

  std::vector<SinkState> sinks;  // configured sinks, in configured order

  // meta.last_seq as stored; it must be brought up to last_seq in any
  // transaction that deletes a batch (see schema.cc).
  std::uint64_t persisted_last_seq = 0;
  bool deleted_batches = false;  // this transaction deleted a batch row

  std::uint64_t& operator[](Counter c) { return counters[static_cast<std::size_t>(c)]; }
  std::uint64_t operator[](Counter c) const { return counters[static_cast<std::size_t>(c)]; }

  // What the cap is measured against.
  std::uint64_t stored_bytes() const {
    return batch_bytes + staged_bytes + dead_bytes + dict_bytes;
  }
  // Samples held: in formed batches and staged.
  std::uint64_t held_samples() const { return batch_samples + staged_samples; }
  // Size of all staged records joined into one payload.
  std::uint64_t staged_payload_bytes() const {
    return staged_rows == 0 ? 0 : staged_bytes + staged_rows - 1;
  }
};

}  // namespace tally::queue
