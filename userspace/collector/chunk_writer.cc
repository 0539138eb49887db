#include "collector/chunk_writer.h"

#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "collector/sample_chunk.h"

namespace tally::collector {

namespace {

constexpr std::uint64_t kMinuteNs = 60ull * 1'000'000'000;
constexpr std::uint64_t kHourNs = 3600ull * 1'000'000'000;
// Names rows remembered as touched, beyond which the memory is cleared.
constexpr std::size_t kMaxNamesTouched = 1 << 20;

}  // namespace

Status ChunkWriter::insert(std::int64_t agent, std::uint64_t seq, std::string_view host,
                           std::uint64_t first_index, const std::vector<ChunkSample>& samples) {
  const ChunkSpan span = chunk_span(samples);
  const std::string data = encode_chunk(samples);
  {
    auto q = insert_.use();
    q->bind(1, agent).bind(2, seq).bind(3, first_index).bind(4, std::uint64_t{samples.size()});
    q->bind(5, host).bind(6, span.min_ts_ns).bind(7, span.max_ts_ns).bind_blob(8, data);
    TALLY_TRY_CTX(q->run(), fmt::format("insert samples {} to {}", first_index,
                                        first_index + samples.size() - 1));
  }
  if (span.max_ts_ns > span.min_ts_ns) {
    auto q = note_span_.use();
    q->bind(1, span.max_ts_ns - span.min_ts_ns);
    TALLY_TRY_CTX(q->run(), "note the chunk's time span");
  }
  TALLY_TRY(mark_dirty(host, samples));
  return touch_names(samples);
}

// One row per distinct bucket: a chunk's samples are of one or a few
// sample times, so this is two inserts for a chunk of tallyd's.
Status ChunkWriter::mark_dirty(std::string_view host, std::span<const ChunkSample> samples) {
  std::uint64_t last_minute = ~0ull;
  std::uint64_t last_hour = ~0ull;
  for (const ChunkSample& s : samples) {
    const std::uint64_t minute = s.ts_ns - s.ts_ns % kMinuteNs;
    const std::uint64_t hour = s.ts_ns - s.ts_ns % kHourNs;
    for (auto [step_s, bucket, last] :
         {std::tuple{60, minute, &last_minute}, std::tuple{3600, hour, &last_hour}}) {
      if (bucket == *last) continue;
      *last = bucket;
      auto q = mark_dirty_.use();
      q->bind(1, std::int64_t{step_s}).bind(2, bucket).bind(3, host);
      TALLY_TRY_CTX(q->run(), "mark the chunk's rollups due");
    }
  }
  return ok_status();
}

Status ChunkWriter::touch_names(std::span<const ChunkSample> samples) {
  for (const ChunkSample& s : samples) {
    if (!s.is_process || s.names_id == 0) continue;
    auto pending = names_pending_.find(s.names_id);
    std::uint64_t known = 0;
    bool seen = false;
    if (pending != names_pending_.end()) {
      known = pending->second;
      seen = true;
    } else if (auto touched = names_touched_.find(s.names_id); touched != names_touched_.end()) {
      known = touched->second;
      seen = true;
    }
    if (seen && s.ts_ns < known + kNamesTouchNs) continue;
    auto q = touch_names_.use();
    q->bind(1, s.names_id).bind(2, s.ts_ns);
    TALLY_TRY_CTX(q->run(), "note when names were last used");
    names_pending_[s.names_id] = std::max(known, s.ts_ns);
  }
  return ok_status();
}

void ChunkWriter::committed() {
  if (names_touched_.size() + names_pending_.size() > kMaxNamesTouched) names_touched_.clear();
  for (const auto& [id, ts] : names_pending_) names_touched_[id] = ts;
  names_pending_.clear();
}

void ChunkWriter::rolled_back() { names_pending_.clear(); }

Result<ChunkWriter> ChunkWriter::prepare(sql::Database& db) {
  ChunkWriter w;
  auto insert = sql::Statement::prepare(
      db,
      "INSERT INTO chunks (agent, seq, first_idx, samples, host, min_ts_ns, max_ts_ns, data)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!insert.ok()) return insert.error();
  // The widest chunk in time, by which a query widens its window's index
  // range (query_store.cc).
  auto note = sql::Statement::prepare(
      db,
      "INSERT INTO store_meta (key, value) VALUES ('max_chunk_span_ns', ?1)"
      " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)");
  if (!note.ok()) return note.error();
  auto dirty = sql::Statement::prepare(
      db, "INSERT OR IGNORE INTO rollup_dirty (step_s, bucket_ns, host) VALUES (?1, ?2, ?3)");
  if (!dirty.ok()) return dirty.error();
  auto touch = sql::Statement::prepare(
      db, "UPDATE names SET last_ts_ns = max(last_ts_ns, ?2) WHERE names_id = ?1");
  if (!touch.ok()) return touch.error();
  w.insert_ = std::move(insert).value();
  w.note_span_ = std::move(note).value();
  w.mark_dirty_ = std::move(dirty).value();
  w.touch_names_ = std::move(touch).value();
  return w;
}

Result<std::uint64_t> ChunkWriter::write(std::int64_t agent, std::uint64_t seq,
                                         std::span<const StoredSample> samples,
                                         std::span<const std::optional<std::int64_t>> names_ids,
                                         const std::vector<bool>& skip) {
  std::uint64_t added = 0;
  std::vector<ChunkSample> run;
  std::uint64_t run_first = 0;
  std::string_view run_host;
  auto flush = [&]() -> Status {
    if (run.empty()) return ok_status();
    TALLY_TRY(insert(agent, seq, run_host, run_first, run));
    added += run.size();
    run.clear();
    return ok_status();
  };
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const StoredSample& s = samples[i];
    const bool continues =
        !run.empty() && !skip[i] && s.host == run_host && s.index == run_first + run.size();
    if (!continues) TALLY_TRY(flush());
    if (skip[i]) continue;
    if (run.empty()) {
      run_first = s.index;
      run_host = s.host;
    }
    run.push_back(to_chunk_sample(s, names_ids[i].value_or(0)));
  }
  TALLY_TRY(flush());
  return added;
}

}  // namespace tally::collector
