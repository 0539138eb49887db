// Keeping the stored bytes under the cap.
//
// The cap is measured in logical bytes (batch payloads + staged records +
// dead-letter payloads), not in file size: the file never shrinks when rows
// are deleted (freed pages are reused, not returned) and the -wal file grows
// and resets with checkpoints, so file size would make eviction depend on
// SQLite's page management and would need VACUUM to ever go down. Logical
// bytes are exact, cheap to track and make "what was dropped" deterministic;
// the file is larger by page slack, indexes and the WAL (reported in stats).
#include "gap.h"
#include "outbox_core.h"
#include "try.h"

namespace tally::queue {
namespace {

std::uint64_t gap_payload_bytes(std::span<const PlannedGap> gaps, std::uint64_t now_ns,
                                const std::string& detail) {
  std::uint64_t bytes = 0;
  for (const PlannedGap& gap : gaps) {
    bytes += encode_gap(make_gap(GapReason::cap, gap.first_seq, gap.last_seq, gap.samples, detail,
                                 now_ns))
                 .size();
  }
  return bytes;
}

}  // namespace

Status OutboxCore::make_room(State& next, std::uint64_t incoming, std::uint64_t now_ns,
                             AppendResult& out) {
  const std::uint64_t cap = options_.cap_bytes;
  const std::string detail = fmt::format("removed to stay under the outbox cap of {} bytes", cap);
  std::vector<EvictedBatch> evicted;
  std::vector<PlannedGap> gaps;
  std::uint64_t gap_bytes = 0;  // the gap records must fit too

  while (next.stored_bytes() + incoming + gap_bytes > cap) {
    if (next.dead_count > 0) {
      // Dead letters go first: they were already declared lost by a gap.
      auto oldest = stmts_.use(Q::dead_oldest);
      auto row = oldest->step();
      if (!row) return row.error().context("find oldest dead letter");
      if (!*row) return Error::format("outbox {}: dead letters missing", db_.path().string());
      const std::int64_t id = oldest->column_int(0);
      const std::uint64_t bytes = oldest->column_u64(1);
      auto remove = stmts_.use(Q::dead_delete);
      remove->bind(1, id);
      TALLY_TRY_CTX(remove->run(), "discard dead letter");
      --next.dead_count;
      next.dead_bytes -= bytes;
      ++next[Counter::dead_letters_discarded];
      continue;
    }

    EvictedBatch batch;
    {
      auto oldest = stmts_.use(Q::batch_oldest_data);
      auto row = oldest->step();
      if (!row) return row.error().context("find oldest batch");
      if (!*row) {
        return Error::format(
            "{} bytes do not fit under the outbox cap of {} bytes ({} bytes held by gap records "
            "and staged samples, which are never evicted)",
            incoming, cap, next.stored_bytes());
      }
      batch.seq = oldest->column_u64(0);
      batch.samples = oldest->column_u64(1);
    }
    {
      auto sinks = stmts_.use(Q::delivery_sinks_of);
      sinks->bind(1, batch.seq);
      for (;;) {
        auto row = sinks->step();
        if (!row) return row.error().context("evict batch");
        if (!*row) break;
        batch.sink_ids.push_back(sinks->column_int(0));
      }
    }
    {
      auto remove = stmts_.use(Q::delivery_delete_all_of);
      remove->bind(1, batch.seq);
      TALLY_TRY_CTX(remove->run(), "evict batch");
    }
    QUEUE_TRY(release_if_done(next, batch.seq));
    next[Counter::gap_samples_cap] += batch.samples;
    evicted.push_back(std::move(batch));
    gaps = plan_gaps(evicted);
    gap_bytes = gap_payload_bytes(gaps, now_ns, detail);
  }

  for (const PlannedGap& planned : gaps) {
    const GapRecord gap = make_gap(GapReason::cap, planned.first_seq, planned.last_seq,
                                   planned.samples, detail, now_ns);
    QUEUE_TRY(insert_gap(next, gap, planned.sink_ids));
    ++out.batches_formed;
  }
  return ok_status();
}

}  // namespace tally::queue
