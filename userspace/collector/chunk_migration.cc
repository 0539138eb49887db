#include "collector/chunk_migration.h"

#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "collector/batch_parser.h"
#include "collector/chunk_writer.h"
#include "collector/json_text.h"
#include "collector/names_rows.h"

namespace tally::collector {

namespace {

// One sample object parsed as the collector parses a body, so that a
// migrated sample is stored exactly as the same sample received today.
std::optional<StoredSample> parse_sample(std::string_view text) {
  std::string body =
      R"({"version":2,"agent_id":"upgrade","host":"upgrade","seq":1,"kind":"samples",)"
      R"("first_index":0,"batch_samples":1,"samples":[)";
  body += text;
  body += "]}";
  std::istringstream in(body);
  auto parsed = parse_batch(in);
  if (!parsed.ok()) return std::nullopt;
  auto* piece = std::get_if<SamplesPiece>(&parsed->body);
  if (piece == nullptr || piece->samples.size() != 1) return std::nullopt;
  return std::move(piece->samples[0]);
}

class Migration {
 public:
  static Result<Migration> prepare(sql::Database& db) {
    Migration m;
    auto rows = sql::Statement::prepare(
        db,
        "SELECT s.agent, s.seq, s.idx, s.host, s.ts_ns, s.pid, s.start_time_ns, s.cpu_ns,"
        " s.json, s.names_at, s.names_id, n.names"
        " FROM samples s LEFT JOIN names n ON n.names_id = s.names_id"
        " ORDER BY s.agent, s.seq, s.idx");
    if (!rows.ok()) return rows.error();
    auto names = NamesRows::prepare(db);
    if (!names.ok()) return names.error();
    auto writer = ChunkWriter::prepare(db);
    if (!writer.ok()) return writer.error();
    m.rows_ = std::move(rows).value();
    m.names_ = std::move(names).value();
    m.writer_ = std::move(writer).value();
    return m;
  }

  Result<ChunkMigration> run() {
    auto rows = rows_.use();
    for (;;) {
      auto row = rows->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      const std::int64_t agent = rows->column_int(0);
      const std::uint64_t seq = rows->column_u64(1);
      if (!batch_.empty() && (agent != agent_ || seq != seq_)) TALLY_TRY(flush());
      agent_ = agent;
      seq_ = seq;
      TALLY_TRY(add(*rows));
    }
    TALLY_TRY(flush());
    return done_;
  }

 private:
  Status add(sql::Statement& row) {
    const bool has_names_row = !row.column_is_null(10);
    const std::string_view json = row.column_text(8);
    // A sample received without its names (protocol version 2) has them
    // at the end; parsed without them it is stored as it came, names left
    // out, which is also the compact form.
    const bool names_left_out = has_names_row && row.column_u64(9) + 1 == json.size();
    const std::string text = has_names_row && !names_left_out
                                 ? with_names(json, row.column_u64(9), row.column_text(11))
                                 : std::string(json);
    std::optional<StoredSample> s = parse_sample(text);
    if (!s) {
      // Kept as it is, with the columns the old schema had.
      s.emplace();
      s->host = row.column_text(3);
      s->ts_ns = row.column_u64(4);
      if (!row.column_is_null(5)) {
        s->pid = static_cast<std::uint32_t>(row.column_int(5));
        s->start_time_ns = row.column_u64(6);
        s->cpu_ns = row.column_u64(7);
      }
      s->json = text;
      // Names go back only where the text lacks them (at 0: nowhere).
      s->names_at = names_left_out ? json.size() - 1 : 0;
      ++done_.kept_as_text;
    }
    s->index = row.column_u64(2);
    std::optional<std::int64_t> names_id;
    if (has_names_row && s->pid) {
      names_id = row.column_int(10);
    } else if (s->pid) {
      auto id = names_.find_or_add(agent_, *s);
      if (!id.ok()) return id.error();
      names_id = *id;
    }
    batch_.push_back(std::move(*s));
    names_ids_.push_back(names_id);
    return ok_status();
  }

  Status flush() {
    if (batch_.empty()) return ok_status();
    auto written =
        writer_.write(agent_, seq_, batch_, names_ids_, std::vector<bool>(batch_.size(), false));
    if (!written.ok()) {
      return written.error().context(fmt::format("move samples of seq {}", seq_));
    }
    done_.samples += *written;
    batch_.clear();
    names_ids_.clear();
    return ok_status();
  }

  sql::Statement rows_;
  NamesRows names_;
  ChunkWriter writer_;
  std::int64_t agent_ = 0;
  std::uint64_t seq_ = 0;
  std::vector<StoredSample> batch_;
  std::vector<std::optional<std::int64_t>> names_ids_;
  ChunkMigration done_;
};

}  // namespace

Result<ChunkMigration> move_sample_rows_to_chunks(sql::Database& db) {
  auto migration = Migration::prepare(db);
  if (!migration.ok()) return migration.error().context("move samples into chunks");
  auto done = migration->run();
  if (!done.ok()) return done.error().context("move samples into chunks");
  return done;
}

}  // namespace tally::collector
