#include "collector/chunk_writer.h"

#include <string_view>

#include <fmt/format.h>

#include "collector/sample_chunk.h"

namespace tally::collector {

namespace {

Status insert_chunk(sql::Statement& insert, sql::Statement& note_span, std::int64_t agent,
                    std::uint64_t seq, std::string_view host, std::uint64_t first_index,
                    const std::vector<ChunkSample>& samples) {
  const ChunkSpan span = chunk_span(samples);
  const std::string data = encode_chunk(samples);
  {
    auto q = insert.use();
    q->bind(1, agent).bind(2, seq).bind(3, first_index).bind(4, std::uint64_t{samples.size()});
    q->bind(5, host).bind(6, span.min_ts_ns).bind(7, span.max_ts_ns).bind_blob(8, data);
    TALLY_TRY_CTX(q->run(), fmt::format("insert samples {} to {}", first_index,
                                        first_index + samples.size() - 1));
  }
  if (span.max_ts_ns > span.min_ts_ns) {
    auto q = note_span.use();
    q->bind(1, span.max_ts_ns - span.min_ts_ns);
    TALLY_TRY_CTX(q->run(), "note the chunk's time span");
  }
  return ok_status();
}

}  // namespace

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
  w.insert_ = std::move(insert).value();
  w.note_span_ = std::move(note).value();
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
    TALLY_TRY(insert_chunk(insert_, note_span_, agent, seq, run_host, run_first, run));
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
