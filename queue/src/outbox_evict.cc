// Keeping the stored bytes under the cap.
//
// The cap is measured in logical bytes (batch payloads + staged records +
// dead-letter payloads + dictionary entries), not in file size: the file
// never shrinks when rows are deleted (freed pages are reused, not
// returned) and the -wal file grows and resets with checkpoints, so file
// size would make eviction depend on SQLite's page management and would need
// VACUUM to ever go down. Logical bytes are exact, cheap to track and make
// "what was dropped" deterministic; the file is larger by page slack,
// indexes and the WAL (reported in stats).
//
// The exception is a filesystem too small for the cap (space_plan.h): there
// the pages in use are what must fit, and they are what eviction measures
// too (page_count - freelist_count: freed pages are reused before the file
// grows, so the file stays within what the filesystem holds).
#include "gap.h"
#include "outbox_core.h"

namespace tally::queue {
namespace {

std::uint64_t gap_payload_bytes(std::span<const PlannedGap> gaps, std::uint64_t now_ns,
                                const std::string& detail) {
  std::uint64_t bytes = 0;
  for (const PlannedGap& gap : gaps) {
    bytes += encode_gap(
                 make_gap(GapReason::cap, gap.first_seq, gap.last_seq, gap.samples, detail, now_ns))
                 .size();
  }
  return bytes;
}

}  // namespace

Result<bool> OutboxCore::over_file_budget(std::uint64_t incoming) {
  if (!space_.limited_by_filesystem) return false;
  // Pages in use, within this transaction: freed ones are reused before the
  // file grows. Both are read from the database header (cheap).
  auto pages = db_.query_int("PRAGMA page_count");
  if (!pages) return pages.error();
  auto free_pages = db_.query_int("PRAGMA freelist_count");
  if (!free_pages) return free_pages.error();
  const auto used = static_cast<std::uint64_t>(*pages - *free_pages) * kPageBytes;
  // Incoming bytes take pages with some slack, plus the rows that index them.
  return used + incoming + incoming / 4 + 4 * kPageBytes > space_.effective_cap_bytes;
}

Status OutboxCore::discard_oldest_dead_letter(State& next) {
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
  return ok_status();
}

Result<EvictedBatch> OutboxCore::evict_oldest_batch(const State& next, std::uint64_t incoming) {
  EvictedBatch batch;
  {
    auto oldest = stmts_.use(Q::batch_oldest_data);
    auto row = oldest->step();
    if (!row) return row.error().context("find oldest batch");
    if (!*row) {
      return Error::format(
          "{} bytes do not fit under the outbox cap of {} bytes ({} bytes held by gap records, "
          "staged samples and the dictionary entries of live processes, which are never "
          "evicted)",
          incoming, std::min(options_.cap_bytes, space_.effective_cap_bytes), next.stored_bytes());
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
  auto remove = stmts_.use(Q::delivery_delete_all_of);
  remove->bind(1, batch.seq);
  TALLY_TRY_CTX(remove->run(), "evict batch");
  return batch;
}

Status OutboxCore::make_room(State& next, std::uint64_t incoming, std::uint64_t now_ns,
                             AppendResult& out) {
  // Stored bytes stay under the configured cap; on a filesystem too small
  // for it, the database's used pages also stay under what the filesystem
  // holds (space_plan.h): the effective cap.
  const std::uint64_t cap = options_.cap_bytes;
  const std::string detail =
      space_.limited_by_filesystem
          ? fmt::format(
                "removed to keep the outbox within {} bytes (its filesystem holds no "
                "more; cap {} bytes)",
                space_.effective_cap_bytes, cap)
          : fmt::format("removed to stay under the outbox cap of {} bytes", cap);
  std::vector<EvictedBatch> evicted;
  std::vector<PlannedGap> gaps;
  std::uint64_t gap_bytes = 0;  // the gap records must fit too

  for (;;) {
    if (next.stored_bytes() + incoming + gap_bytes <= cap) {
      auto over = over_file_budget(incoming + gap_bytes);
      if (!over) return over.error().context("measure the outbox file");
      if (!*over) break;
    }
    if (next.dead_count > 0) {
      // Dead letters go first: they were already declared lost by a gap.
      TALLY_TRY(discard_oldest_dead_letter(next));
      continue;
    }

    auto evicted_batch = evict_oldest_batch(next, incoming);
    if (!evicted_batch) return evicted_batch.error();
    EvictedBatch batch = std::move(*evicted_batch);
    TALLY_TRY(release_if_done(next, batch.seq));
    // Entries only this batch referred to go with it, and count at once.
    if (next.dict_settled > 0) TALLY_TRY(prune_entries(next));
    next[Counter::gap_samples_cap] += batch.samples;
    evicted.push_back(std::move(batch));
    gaps = plan_gaps(evicted);
    gap_bytes = gap_payload_bytes(gaps, now_ns, detail);
  }

  for (const PlannedGap& planned : gaps) {
    const GapRecord gap = make_gap(GapReason::cap, planned.first_seq, planned.last_seq,
                                   planned.samples, detail, now_ns);
    TALLY_TRY(insert_gap(next, gap, planned.sink_ids));
    ++out.batches_formed;
  }
  return ok_status();
}

}  // namespace tally::queue
