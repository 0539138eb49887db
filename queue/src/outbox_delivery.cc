// Per-sink delivery: what is ready, and acks, failures and rejections.
#include <algorithm>

#include "batch_plan.h"
#include "gap.h"
#include "outbox_core.h"

namespace tally::queue {
namespace {

Batch::Kind kind_of(std::int64_t column) {
  return column == 1 ? Batch::Kind::gap : Batch::Kind::samples;
}

}  // namespace

Result<const SinkState*> OutboxCore::find_sink(std::string_view name) const {
  for (const SinkState& sink : state_.sinks) {
    if (sink.name == name) return &sink;
  }
  return Error::format("outbox {}: unknown sink \"{}\"", db_.path().string(), name);
}

Result<std::optional<Batch>> OutboxCore::next_ready(std::string_view sink_name) {
  TALLY_TRY(usable());
  auto sink = find_sink(sink_name);
  if (!sink) return sink.error();
  const auto held = held_acks_.find((*sink)->id);
  std::uint64_t after = 0;
  for (;;) {
    auto query = stmts_.use(Q::delivery_next_ready);
    query->bind(1, (*sink)->id).bind(2, after);
    auto row = query->step();
    if (!row) return row.error().context(fmt::format("next batch for sink {}", sink_name));
    if (!*row) return std::optional<Batch>();
    // Acked already, in memory only (the disk was full): the next one.
    if (held != held_acks_.end() && held->second.contains(query->column_u64(0))) {
      after = query->column_u64(0);
      continue;
    }
    return read_ready(*query);
  }
}

Result<std::optional<Batch>> OutboxCore::read_ready(sql::Statement& query) {
  Batch batch;
  batch.seq = query.column_u64(0);
  batch.attempts = static_cast<std::uint32_t>(query.column_int(1));
  batch.last_error = std::string(query.column_text(2));
  batch.kind = kind_of(query.column_int(3));
  batch.created_ns = query.column_u64(4);
  batch.sample_count = static_cast<std::uint32_t>(query.column_int(5));
  auto payload = codec_.unpack(query.column_blob(6), static_cast<Codec>(query.column_int(7)),
                               query.column_u64(8));
  if (!payload) return payload.error().context(fmt::format("read batch {}", batch.seq));
  batch.payload = std::move(*payload);
  if (batch.kind == Batch::Kind::gap) batch.gap = decode_gap(batch.payload);
  return std::optional<Batch>(std::move(batch));
}

Status OutboxCore::ack(std::string_view sink_name, std::uint64_t seq) {
  auto sink = find_sink(sink_name);
  if (!sink) return sink.error();
  const std::int64_t sink_id = (*sink)->id;
  auto result =
      transact([&](State& next) { return record_ack(next, sink_id, seq); }, Durability::lazy);
  if (!result && disk_full_ && db_.handle() != nullptr) {
    // The disk cannot take the ack now: hold it, so that shipping goes on
    // (outbox.h, ack). Reading still works on a full disk.
    auto pending = stmts_.use(Q::delivery_pending);
    pending->bind(1, sink_id).bind(2, seq);
    auto row = pending->step();
    if (row && *row) held_acks_[sink_id].insert(seq);
    if (row) return ok_status();
  }
  if (!result)
    return result.error().context(fmt::format("ack batch {} for sink {}", seq, sink_name));
  return result;
}

Status OutboxCore::record_ack(State& next, std::int64_t sink_id, std::uint64_t seq) {
  {
    auto remove = stmts_.use(Q::delivery_delete);
    remove->bind(1, sink_id).bind(2, seq);
    TALLY_TRY_CTX(remove->run(), "remove delivery");
  }
  if (db_.changes() == 0) return ok_status();  // already done: acks are idempotent
  auto it = std::find_if(next.sinks.begin(), next.sinks.end(),
                         [&](const SinkState& x) { return x.id == sink_id; });
  if (it != next.sinks.end() && seq > it->last_acked_seq) {
    it->last_acked_seq = seq;
    auto update = stmts_.use(Q::sink_set_acked);
    update->bind(1, sink_id).bind(2, seq);
    TALLY_TRY_CTX(update->run(), "record ack");
  }
  return release_if_done(next, seq);
}

Status OutboxCore::fail(std::string_view sink_name, std::uint64_t seq, std::string_view error) {
  auto sink = find_sink(sink_name);
  if (!sink) return sink.error();
  auto result = transact(
      [&](State&) -> Status {
        auto update = stmts_.use(Q::delivery_fail);
        update->bind(1, (*sink)->id).bind(2, seq).bind_text(3, error);
        TALLY_TRY(update->run());
        if (db_.changes() == 0) return Error("batch is not pending for this sink");
        return ok_status();
      },
      Durability::lazy);
  // On a full disk the attempt is not recorded: the shipper's own backoff
  // paces the retries, and the count only feeds status.
  if (!result && disk_full_) return ok_status();
  if (!result) {
    return result.error().context(
        fmt::format("record failed attempt of batch {} for sink {}", seq, sink_name));
  }
  return result;
}

Status OutboxCore::reject(std::string_view sink_name, std::uint64_t seq, int http_status,
                          std::string_view message, std::uint64_t now_ns,
                          std::string_view readable) {
  auto sink = find_sink(sink_name);
  if (!sink) return sink.error();
  const SinkState& s = **sink;
  auto result = transact([&](State& next) -> Status {
    auto batch = pending_batch(s, seq);
    if (!batch) return batch.error();
    TALLY_TRY(insert_dead_letter(next, s, seq, 0, batch->sample_count, http_status, message, now_ns,
                                 readable.empty() ? batch->payload : readable));
    // A refused gap record is dead-lettered but declares nothing new: a
    // server that refuses gaps would otherwise get an endless chain of them.
    if (batch->kind == Batch::Kind::samples) {
      GapRecord gap = make_gap(GapReason::rejected, seq, seq, batch->sample_count,
                               std::string(message), now_ns);
      gap.http_status = static_cast<std::uint32_t>(http_status);
      const std::int64_t only[] = {s.id};
      TALLY_TRY(insert_gap(next, gap, only));
      next[Counter::gap_samples_rejected] += batch->sample_count;
    }
    {
      auto remove = stmts_.use(Q::delivery_delete);
      remove->bind(1, s.id).bind(2, seq);
      TALLY_TRY_CTX(remove->run(), "remove delivery");
    }
    return release_if_done(next, seq);
  });
  if (!result) {
    return result.error().context(fmt::format("reject batch {} for sink {}", seq, sink_name));
  }
  return result;
}

Status OutboxCore::reject_samples(std::string_view sink_name, std::uint64_t seq,
                                  std::uint32_t first_index, std::uint32_t count, int http_status,
                                  std::string_view message, std::uint64_t now_ns,
                                  std::string_view readable) {
  auto sink = find_sink(sink_name);
  if (!sink) return sink.error();
  const SinkState& s = **sink;
  auto result = transact([&](State& next) -> Status {
    auto batch = pending_batch(s, seq);
    if (!batch) return batch.error();
    if (batch->kind != Batch::Kind::samples) return Error("a gap batch has no samples to reject");
    if (count == 0 || std::uint64_t{first_index} + count > batch->sample_count) {
      return Error::format("samples [{}, {}) are not within the batch's {} samples", first_index,
                           std::uint64_t{first_index} + count, batch->sample_count);
    }
    std::string piece(readable);
    if (piece.empty()) {
      const std::vector<std::string_view> lines = split_lines(batch->payload);
      for (std::uint32_t i = first_index; i < first_index + count; ++i) {
        if (i > first_index) piece.push_back('\n');
        piece.append(lines[i]);
      }
    }
    TALLY_TRY(
        insert_dead_letter(next, s, seq, first_index, count, http_status, message, now_ns, piece));
    GapRecord gap = make_gap(GapReason::rejected, seq, seq, count, std::string(message), now_ns);
    gap.http_status = static_cast<std::uint32_t>(http_status);
    gap.first_index = first_index;
    const std::int64_t only[] = {s.id};
    TALLY_TRY(insert_gap(next, gap, only));
    next[Counter::gap_samples_rejected] += count;
    return ok_status();
  });
  if (!result) {
    return result.error().context(
        fmt::format("reject samples of batch {} for sink {}", seq, sink_name));
  }
  return result;
}

Result<OutboxCore::StoredBatch> OutboxCore::pending_batch(const SinkState& sink,
                                                          std::uint64_t seq) {
  {
    auto pending = stmts_.use(Q::delivery_pending);
    pending->bind(1, sink.id).bind(2, seq);
    auto row = pending->step();
    if (!row) return row.error();
    if (!*row) return Error("batch is not pending for this sink");
  }
  auto get = stmts_.use(Q::batch_get);
  get->bind(1, seq);
  auto row = get->step();
  if (!row) return row.error();
  if (!*row) return Error("batch is missing");
  auto payload = codec_.unpack(get->column_blob(3), static_cast<Codec>(get->column_int(4)),
                               get->column_u64(5));
  if (!payload) return payload.error();
  return StoredBatch{kind_of(get->column_int(0)), static_cast<std::uint32_t>(get->column_int(2)),
                     std::move(*payload)};
}

Status OutboxCore::insert_dead_letter(State& next, const SinkState& sink, std::uint64_t seq,
                                      std::uint32_t first_index, std::uint32_t count,
                                      int http_status, std::string_view message,
                                      std::uint64_t now_ns, std::string_view payload) {
  auto insert = stmts_.use(Q::dead_insert);
  insert->bind_text(1, sink.name)
      .bind(2, seq)
      .bind(3, first_index)
      .bind(4, count)
      .bind(5, http_status)
      .bind_text(6, message)
      .bind(7, now_ns)
      .bind(8, static_cast<std::uint64_t>(payload.size()))
      .bind_blob(9, payload);
  TALLY_TRY_CTX(insert->run(), "store dead letter");
  ++next.dead_count;
  next.dead_bytes += payload.size();
  return ok_status();
}

Status OutboxCore::release_if_done(State& next, std::uint64_t seq) {
  {
    auto left = stmts_.use(Q::delivery_any_left);
    left->bind(1, seq);
    auto row = left->step();
    if (!row) return row.error();
    if (*row && left->column_int(0) != 0) return ok_status();
  }
  auto remove = stmts_.use(Q::batch_delete);
  remove->bind(1, seq);
  auto row = remove->step();
  if (!row) return row.error().context(fmt::format("remove batch {}", seq));
  if (*row) {
    --next.batch_count;
    next.batch_bytes -= remove->column_u64(0);
    next.batch_samples -= std::min(next.batch_samples, remove->column_u64(1));
    next.deleted_batches = true;
  }
  return ok_status();
}

}  // namespace tally::queue
