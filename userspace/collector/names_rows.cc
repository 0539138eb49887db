#include "collector/names_rows.h"

#include "collector/names_digest.h"

namespace tally::collector {

Result<NamesRows> NamesRows::prepare(sql::Database& db) {
  auto find = sql::Statement::prepare(
      db,
      "SELECT names_id, names FROM names"
      " WHERE agent = ?1 AND pid = ?2 AND start_time_ns = ?3 AND digest = ?4");
  if (!find.ok()) return find.error();
  auto insert = sql::Statement::prepare(
      db,
      "INSERT INTO names (agent, pid, start_time_ns, digest, names) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!insert.ok()) return insert.error();
  NamesRows rows;
  rows.db_ = &db;
  rows.find_ = std::move(find).value();
  rows.insert_ = std::move(insert).value();
  return rows;
}

Result<std::int64_t> NamesRows::find_or_add(std::int64_t agent, const StoredSample& s) {
  const std::int64_t digest = names_digest(s.names);
  {
    auto find = find_.use();
    find->bind(1, agent).bind(2, std::uint64_t{*s.pid}).bind(3, *s.start_time_ns).bind(4, digest);
    for (;;) {
      auto row = find->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      if (find->column_text(1) == s.names) return find->column_int(0);
    }
  }
  auto insert = insert_.use();
  insert->bind(1, agent).bind(2, std::uint64_t{*s.pid}).bind(3, *s.start_time_ns);
  insert->bind(4, digest).bind(5, s.names);
  TALLY_TRY(insert->run());
  return db_->last_insert_rowid();
}

}  // namespace tally::collector
