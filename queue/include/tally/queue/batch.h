// What the shipper gets from the outbox: one immutable, numbered batch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tally::queue {

// Why samples were lost. Appears as "reason" in gap payloads.
enum class GapReason {
  cap,            // evicted to stay under OutboxOptions::cap_bytes
  rejected,       // a sink permanently refused them (Outbox::reject*)
  append_failed,  // append() failed (disk full, I/O error) and stored nothing
  // The outbox file was truncated, overwritten or deleted, and what it held
  // could not be recovered; or, at open, the file is not the one the last
  // writer of this path left (see GapRecord::predecessor).
  outbox_lost,
};
inline constexpr int kGapReasonCount = 4;

// "cap", "rejected", "append_failed", "outbox_lost".
const char* gap_reason_name(GapReason reason);

// A declaration that samples are missing, so a server sees every seq either
// received or declared lost.
// The agent whose data an outbox continues when it started afresh: the last
// writer of the same path, whose seqs above those a server holds, up to
// last_seq, are lost.
struct GapPredecessor {
  std::string agent_id;
  std::uint64_t last_seq = 0;
  friend bool operator==(const GapPredecessor&, const GapPredecessor&) = default;
};

struct GapRecord {
  // The removed seq range, inclusive, contiguous. For a rejected batch or
  // piece both are that batch's seq. For append_failed both are 0: the
  // samples never had a seq.
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t samples = 0;  // samples lost, exactly
  GapReason reason = GapReason::cap;
  std::string detail;             // human-readable, e.g. the server's message
  std::uint64_t time_ns = 0;      // when the loss was recorded, ns since epoch
  std::uint32_t http_status = 0;  // rejected only; 0 otherwise
  // rejected pieces only: line index of the first refused sample in the batch
  std::optional<std::uint32_t> first_index;
  // outbox_lost at open only, with first_seq = last_seq = 0: the agent id
  // (another seq space) whose unshipped data this record declares lost.
  std::optional<GapPredecessor> predecessor;
};

struct Batch {
  enum class Kind { samples, gap };

  std::uint64_t seq = 0;  // strictly increasing per agent, never reused
  Kind kind = Kind::samples;
  // samples: the records joined by '\n' in append order (line i is sample i).
  // gap: one JSON object {"kind":"gap","first_seq":..,"last_seq":..,
  //      "samples":..,"reason":..,"time_ns":..,"detail":..[,"http_status":..]
  //      [,"first_index":..][,"predecessor":{"agent_id":..,"last_seq":..}]}.
  // The bytes never change, so every retry sends the same payload.
  std::string payload;
  std::uint32_t sample_count = 0;  // lines in payload; 0 for gap batches
  std::optional<GapRecord> gap;    // set for gap batches, parsed for encoders
  std::uint32_t attempts = 0;      // failed attempts for the asking sink
  std::string last_error;          // from the last fail() for that sink
  std::uint64_t created_ns = 0;    // when the batch was formed
};

}  // namespace tally::queue
