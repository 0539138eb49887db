// Appending samples and forming them into numbered batches.
#include <deque>

#include "batch_plan.h"
#include "gap.h"
#include "outbox_core.h"

namespace tally::queue {
namespace {

std::uint64_t age(std::uint64_t since_ns, std::uint64_t now_ns) {
  return now_ns > since_ns ? now_ns - since_ns : 0;  // clocks may step back
}

Status check_samples(std::span<const std::string> samples) {
  for (std::size_t i = 0; i < samples.size(); ++i) {
    // A newline would shift the line numbers that identify later samples.
    if (samples[i].find('\n') != std::string::npos) {
      return Error::format("sample {} contains a newline", i);
    }
  }
  return ok_status();
}

}  // namespace

Result<AppendResult> OutboxCore::append(std::span<const std::string> samples, std::uint64_t now_ns,
                                        const DictionaryUpdate& dictionary) {
  // One look at the file per append (a few stat calls): was it deleted,
  // replaced or truncated since the last one (outbox_recover.cc)? Not twice
  // when the writer looked just before (outbox.h, check_file).
  const bool had_entries = first_unused_key_ > 1;
  Result<bool> checked = false;
  if (!checked_since_append_) checked = check_file(now_ns);
  checked_since_append_ = false;
  auto result = [&]() -> Result<AppendResult> {
    if (checked.ok() && *checked && had_entries) {
      // These records may refer to entries the lost file held; stored, they
      // could never be read. The writer names everything afresh (outbox.h).
      return Error::format(
          "outbox {} was recreated: the dictionary entries stored before are "
          "gone, and these samples may refer to them",
          options_.path.string());
    }
    TALLY_TRY(check_samples(samples));
    return transact([&](State& next) -> Result<AppendResult> {
      AppendResult out;
      if (unrecorded_lost_ > 0) {
        // The first append that succeeds after failures declares them.
        const GapRecord gap = make_gap(GapReason::append_failed, 0, 0, unrecorded_lost_,
                                       "samples the outbox could not store", now_ns);
        TALLY_TRY(insert_gap(next, gap, all_sink_ids()));
        next[Counter::gap_samples_append_failed] += unrecorded_lost_;
        ++out.batches_formed;
      }
      // Forming joins the staged rows and this interval with one '\n' each.
      std::uint64_t entry_bytes = 0;
      for (const auto& [key, value] : dictionary.added) entry_bytes += 4 + value.size();
      const std::uint64_t incoming =
          joined_size(samples) + (samples.empty() ? 0 : next.staged_rows) + entry_bytes;
      TALLY_TRY(make_room(next, incoming, now_ns, out));
      TALLY_TRY(stage_and_form(next, samples, now_ns, out));
      // After forming: entries retired in the same update (an interval's
      // header, a process that started and exited within it) are inserted
      // retired, with the seq forming just gave.
      TALLY_TRY(add_entries(next, dictionary));
      return out;
    });
  }();
  if (!result) {
    unrecorded_lost_ += samples.size();
    return result.error().context(fmt::format("append {} samples", samples.size()));
  }
  if (unrecorded_lost_ > 0) {
    // The disk refused us and has room again: fold the WAL into the
    // database now rather than at its limit, so that the next write starts
    // it over (and journal_size_limit trims it) while space is scarce.
    checkpoint();
  }
  unrecorded_lost_ = 0;
  return result;
}

Result<int> OutboxCore::form_all(std::uint64_t now_ns) {
  if (state_.staged_samples == 0) return 0;
  return form_staged(now_ns, Forming::now);
}

Result<int> OutboxCore::form_staged(std::uint64_t now_ns, Forming forming) {
  auto result = transact([&](State& next) -> Result<AppendResult> {
    AppendResult out;
    TALLY_TRY(stage_and_form(next, {}, now_ns, out, forming));
    return out;
  });
  if (!result) return result.error().context("form staged batches");
  return static_cast<int>(result->batches_formed);
}

bool OutboxCore::age_due(const State& state, std::uint64_t now_ns) const {
  const std::uint64_t max_age = options_.batch.max_age_ns;
  if (max_age == 0) return true;
  return state.staged_samples > 0 && age(state.staged_oldest_ns, now_ns) >= max_age;
}

Status OutboxCore::stage_and_form(State& next, std::span<const std::string> incoming,
                                  std::uint64_t now_ns, AppendResult& out, Forming forming) {
  const BatchLimits& limits = options_.batch;
  const std::uint64_t incoming_bytes = joined_size(incoming);
  const std::uint64_t total_samples = next.staged_samples + incoming.size();
  if (total_samples == 0) return ok_status();
  const std::uint64_t total_bytes = next.staged_payload_bytes() + incoming_bytes +
                                    (next.staged_rows > 0 && !incoming.empty() ? 1 : 0);
  const bool flush = forming == Forming::now || age_due(next, now_ns);
  const bool limit_reached = total_samples >= limits.max_samples || total_bytes >= limits.max_bytes;

  if (!flush && !limit_reached) {
    // Nothing to form: keep the interval as one staged row.
    std::string records;
    records.reserve(incoming_bytes);
    for (std::size_t i = 0; i < incoming.size(); ++i) {
      if (i > 0) records.push_back('\n');
      records.append(incoming[i]);
    }
    TALLY_TRY_CTX(insert_staged(records, incoming.size(), now_ns), "stage samples");
    if (next.staged_rows == 0) next.staged_oldest_ns = now_ns;
    ++next.staged_rows;
    next.staged_samples += incoming.size();
    next.staged_bytes += incoming_bytes;
    return ok_status();
  }

  // Read back what is staged (usually nothing: with max_age 0 every append
  // forms at once and this is a plain copy of the interval into batches).
  std::deque<std::string> blobs;  // deque: views into earlier blobs stay valid
  std::vector<StagedChunk> chunks;
  if (next.staged_rows > 0) TALLY_TRY(read_staged(blobs, chunks));
  if (!incoming.empty()) {
    StagedChunk chunk{now_ns, {}};
    chunk.lines.assign(incoming.begin(), incoming.end());
    chunks.push_back(std::move(chunk));
  }

  const BatchPlan plan = plan_batches(chunks, limits, flush);
  const std::vector<std::int64_t> sinks = all_sink_ids();
  for (const PlannedBatch& planned : plan.batches) {
    const std::string payload = join_batch(chunks, planned);
    auto seq = insert_batch(next, Batch::Kind::samples, payload, planned.count, now_ns, sinks);
    if (!seq) return seq.error();
    if (out.first_seq == 0) out.first_seq = *seq;
    out.last_seq = *seq;
    ++out.batches_formed;
  }

  if (next.staged_rows > 0) {
    auto clear = stmts_.use(Q::staged_clear);
    TALLY_TRY_CTX(clear->run(), "clear staged samples");
  }
  next.staged_rows = next.staged_samples = next.staged_bytes = next.staged_oldest_ns = 0;
  if (plan.rest_samples == 0) return settle_entries(next);

  // The partial batch that reached no limit stays staged as one row, dated
  // by its oldest sample so the age limit still counts from there.
  const PlannedBatch rest{plan.rest, static_cast<std::uint32_t>(plan.rest_samples), 0};
  const std::string records = join_batch(chunks, rest);
  const std::uint64_t created = chunks[plan.rest.chunk].created_ns;
  TALLY_TRY_CTX(insert_staged(records, plan.rest_samples, created), "stage remaining samples");
  next.staged_rows = 1;
  next.staged_samples = plan.rest_samples;
  next.staged_bytes = records.size();
  next.staged_oldest_ns = created;
  return ok_status();
}

Status OutboxCore::insert_staged(std::string_view records, std::uint64_t samples,
                                 std::uint64_t created_ns) {
  auto packed = codec_.pack(records);
  if (!packed) return packed.error();
  auto insert = stmts_.use(Q::staged_insert);
  insert->bind(1, created_ns)
      .bind(2, samples)
      .bind(3, static_cast<std::uint64_t>(records.size()))
      .bind_blob(4, packed->bytes)
      .bind(5, static_cast<int>(packed->codec));
  return insert->run();
}

Status OutboxCore::read_staged(std::deque<std::string>& blobs, std::vector<StagedChunk>& chunks) {
  auto read = stmts_.use(Q::staged_read);
  for (;;) {
    auto row = read->step();
    if (!row) return row.error().context("read staged samples");
    if (!*row) return ok_status();
    auto records = codec_.unpack(read->column_blob(2), static_cast<Codec>(read->column_int(3)),
                                 read->column_u64(4));
    if (!records) return records.error().context("read staged samples");
    blobs.push_back(std::move(*records));
    StagedChunk chunk{read->column_u64(0), split_lines(blobs.back())};
    if (chunk.lines.size() != read->column_u64(1)) {
      return Error::format("staged row in {} holds {} lines, expected {}", db_.path().string(),
                           chunk.lines.size(), read->column_u64(1));
    }
    chunks.push_back(std::move(chunk));
  }
}

Result<std::uint64_t> OutboxCore::insert_batch(State& next, Batch::Kind kind,
                                               std::string_view payload, std::uint32_t sample_count,
                                               std::uint64_t now_ns,
                                               std::span<const std::int64_t> sink_ids) {
  // The seq is taken from the persisted counter inside this transaction, so
  // it is never reused, even after the batches table empties or a crash.
  const std::uint64_t seq = next[Counter::last_seq] + 1;
  const std::string what = fmt::format("store batch {}", seq);
  {
    // Gap records are a few hundred bytes: stored as they are.
    const bool pack = kind == Batch::Kind::samples;
    PackedBlob packed;
    if (pack) {
      auto p = codec_.pack(payload);
      if (!p) return p.error().context(what);
      packed = std::move(*p);
    }
    auto insert = stmts_.use(Q::batch_insert);
    insert->bind(1, seq)
        .bind(2, kind == Batch::Kind::gap ? 1 : 0)
        .bind(3, now_ns)
        .bind(4, sample_count)
        .bind(5, static_cast<std::uint64_t>(payload.size()))
        .bind_blob(6, pack ? std::string_view(packed.bytes) : payload)
        .bind(7, static_cast<int>(packed.codec));
    TALLY_TRY_CTX(insert->run(), what);
  }
  for (const std::int64_t sink : sink_ids) {
    auto insert = stmts_.use(Q::delivery_insert);
    insert->bind(1, sink).bind(2, seq);
    TALLY_TRY_CTX(insert->run(), what);
  }
  next[Counter::last_seq] = seq;
  ++next.batch_count;
  next.batch_bytes += payload.size();
  next.batch_samples += sample_count;
  return seq;
}

Result<std::uint64_t> OutboxCore::insert_gap(State& next, const GapRecord& gap,
                                             std::span<const std::int64_t> sink_ids) {
  auto seq = insert_batch(next, Batch::Kind::gap, encode_gap(gap), 0, gap.time_ns, sink_ids);
  if (!seq) return seq.error().context(fmt::format("record {} gap", gap_reason_name(gap.reason)));
  ++next[gap_records_counter(gap.reason)];
  return seq;
}

std::vector<std::int64_t> OutboxCore::all_sink_ids() const {
  std::vector<std::int64_t> ids;
  ids.reserve(state_.sinks.size());
  for (const SinkState& sink : state_.sinks) ids.push_back(sink.id);
  return ids;
}

}  // namespace tally::queue
