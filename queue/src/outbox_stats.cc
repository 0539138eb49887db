// The stats snapshot: in-memory totals plus a few indexed queries per sink.
#include <sys/stat.h>

#include <set>

#include "outbox_core.h"
#include "schema.h"

namespace tally::queue {
namespace {

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

Result<OutboxStats> OutboxCore::stats(std::uint64_t now_ns) {
  refresh_space();  // a filesystem resized (or remounted) under us
  OutboxStats out;
  fill_state_stats(out);
  // Without a connection (a recovery is under way) memory says enough.
  if (db_.handle() == nullptr) return out;
  {
    auto oldest = stmts_.use(Q::batch_oldest_created);
    auto row = oldest->step();
    if (!row) return row.error().context("stats");
    if (*row && now_ns > oldest->column_u64(0)) {
      out.oldest_pending_age_ns = now_ns - oldest->column_u64(0);
    }
  }
  out.sinks.clear();
  std::optional<std::set<std::uint64_t>> acked_by_all;  // held in memory, by every sink
  for (const SinkState& sink : state_.sinks) {
    SinkStats s;
    s.name = sink.name;
    s.last_acked_seq = sink.last_acked_seq;
    const auto held = held_acks_.find(sink.id);
    const std::set<std::uint64_t> none;
    const std::set<std::uint64_t>& held_seqs = held != held_acks_.end() ? held->second : none;
    {
      auto count = stmts_.use(Q::delivery_count);
      count->bind(1, sink.id);
      auto row = count->step();
      if (!row) return row.error().context("stats");
      s.pending = count->column_u64(0) - std::min(count->column_u64(0), held_seqs.size());
    }
    if (!acked_by_all) {
      acked_by_all = held_seqs;
    } else {
      std::erase_if(*acked_by_all, [&](std::uint64_t seq) { return !held_seqs.contains(seq); });
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
  if (acked_by_all) {
    out.pending_batches -= std::min<std::uint64_t>(out.pending_batches, acked_by_all->size());
  }
  {
    // A scan of the dictionary: one row per append that named a process
    // still alive or still referred to.
    auto n = db_.query_int("SELECT coalesce(sum(count), 0) FROM dictionary");
    if (!n) return n.error().context("count dictionary entries");
    out.dictionary_entries = static_cast<std::uint64_t>(*n);
  }
  const std::string path = db_.path().string();
  out.file_bytes = file_size(path) + file_size(path + "-wal");
  return out;
}

void OutboxCore::fill_state_stats(OutboxStats& out) const {
  out.agent_id = agent_id_;
  out.schema_version = kSchemaVersion;
  out.pending_batches = state_.batch_count;
  out.pending_bytes = state_.batch_bytes;
  out.staged_samples = state_.staged_samples;
  out.staged_bytes = state_.staged_bytes;
  out.last_seq = state_[Counter::last_seq];
  for (const SinkState& sink : state_.sinks) {
    out.sinks.push_back(SinkStats{sink.name, sink.last_acked_seq, 0, std::nullopt, 0, {}});
  }
  for (int i = 0; i < kGapReasonCount; ++i) {
    const auto reason = static_cast<GapReason>(i);
    out.gaps[static_cast<std::size_t>(i)] = {state_[gap_records_counter(reason)],
                                             state_[gap_samples_counter(reason)]};
  }
  out.dead_letters = state_.dead_count;
  out.dead_letter_bytes = state_.dead_bytes;
  out.dead_letters_discarded = state_[Counter::dead_letters_discarded];
  out.samples_lost_append = state_[Counter::gap_samples_append_failed] + unrecorded_lost_;
  out.dictionary_bytes = state_.dict_bytes;
  out.stored_bytes = state_.stored_bytes();
  out.cap_bytes = options_.cap_bytes;
  out.effective_cap_bytes = space_.effective_cap_bytes;
  out.cap_limited_by_filesystem = space_.limited_by_filesystem;
  if (fs_) {
    out.filesystem_bytes = fs_->size_bytes;
    out.filesystem_free_bytes = fs_->free_bytes;
  }
  out.wal_limit_bytes = space_.wal_limit_bytes;
  out.quarantine_events = state_[Counter::quarantine_events];
  out.quarantined_files = quarantined_files_;
  out.disk_full = disk_full_;
  for (const auto& [sink, seqs] : held_acks_) out.acks_unsaved += seqs.size();
  out.opened_without_shm = exclusive_;
  out.file_changes = file_changes_;
  out.last_file_change = last_file_change_;
  out.file_problem = !file_problem_.empty() ? file_problem_ : lock_problem_;
  out.predecessor = predecessor_;
  out.lock_path = lock_.path().string();
}

}  // namespace tally::queue
