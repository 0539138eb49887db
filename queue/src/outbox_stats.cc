// The stats snapshot: in-memory totals plus a few indexed queries per sink.
#include <sys/stat.h>

#include "outbox_core.h"
#include "schema.h"
#include "try.h"

namespace tally::queue {
namespace {

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

Result<OutboxStats> OutboxCore::stats(std::uint64_t now_ns) {
  OutboxStats out;
  out.agent_id = agent_id_;
  out.schema_version = kSchemaVersion;
  out.pending_batches = state_.batch_count;
  out.pending_bytes = state_.batch_bytes;
  out.staged_samples = state_.staged_samples;
  out.staged_bytes = state_.staged_bytes;
  out.last_seq = state_[Counter::last_seq];
  {
    auto oldest = stmts_.use(Q::batch_oldest_created);
    auto row = oldest->step();
    if (!row) return row.error().context("stats");
    if (*row && now_ns > oldest->column_u64(0)) {
      out.oldest_pending_age_ns = now_ns - oldest->column_u64(0);
    }
  }
  for (const SinkState& sink : state_.sinks) {
    SinkStats s;
    s.name = sink.name;
    s.last_acked_seq = sink.last_acked_seq;
    {
      auto count = stmts_.use(Q::delivery_count);
      count->bind(1, sink.id);
      auto row = count->step();
      if (!row) return row.error().context("stats");
      s.pending = count->column_u64(0);
    }
    {
      auto head = stmts_.use(Q::delivery_head);
      head->bind(1, sink.id);
      auto row = head->step();
      if (!row) return row.error().context("stats");
      if (*row) {
        s.oldest_pending_seq = head->column_u64(0);
        s.head_attempts = static_cast<std::uint32_t>(head->column_int(1));
        s.head_last_error = std::string(head->column_text(2));
      }
    }
    out.sinks.push_back(std::move(s));
  }
  for (int i = 0; i < kGapReasonCount; ++i) {
    const auto reason = static_cast<GapReason>(i);
    out.gaps[static_cast<std::size_t>(i)] = {state_[gap_records_counter(reason)],
                                             state_[gap_samples_counter(reason)]};
  }
  out.dead_letters = state_.dead_count;
  out.dead_letter_bytes = state_.dead_bytes;
  out.dead_letters_discarded = state_[Counter::dead_letters_discarded];
  {
    // A scan of the dictionary: one row per append that named a process
    // still alive or still referred to.
    auto n = db_.query_int("SELECT coalesce(sum(count), 0) FROM dictionary");
    auto bytes = db_.query_int("SELECT coalesce(sum(length(entries)), 0) FROM dictionary");
    if (!n) return n.error().context("count dictionary entries");
    if (!bytes) return bytes.error().context("count dictionary entries");
    out.dictionary_entries = static_cast<std::uint64_t>(*n);
    out.dictionary_bytes = static_cast<std::uint64_t>(*bytes);
  }
  out.samples_lost_append = state_[Counter::gap_samples_append_failed] + unrecorded_lost_;
  out.stored_bytes = state_.stored_bytes();
  out.cap_bytes = options_.cap_bytes;
  const std::string path = db_.path().string();
  out.file_bytes = file_size(path) + file_size(path + "-wal");
  out.quarantine_events = state_[Counter::quarantine_events];
  out.quarantined_files = quarantined_files_;
  return out;
}

}  // namespace tally::queue
