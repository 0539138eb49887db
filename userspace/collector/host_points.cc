#include "collector/host_points.h"

#include <algorithm>

#include <fmt/format.h>

#include "collector/sample_chunk.h"

namespace tally::collector {

Result<HostPoints> HostPoints::prepare(sql::Database& db) {
  HostPoints p;
  struct {
    sql::Statement* stmt;
    const char* sql;
  } table[] = {
      // ?2 is the window's start widened by the widest chunk (store_schema.cc).
      {&p.chunks_,
       "SELECT chunk, data FROM chunks WHERE host = ?1 AND min_ts_ns >= ?2 AND min_ts_ns < ?3"
       " AND max_ts_ns >= ?4"},
      {&p.widest_, "SELECT value FROM store_meta WHERE key = 'max_chunk_span_ns'"},
      {&p.names_, "SELECT pid, start_time_ns, names FROM names WHERE names_id = ?1"},
  };
  for (auto& [stmt, sql] : table) {
    auto prepared = sql::Statement::prepare(db, sql);
    if (!prepared.ok()) return prepared.error();
    *stmt = std::move(prepared).value();
  }
  return p;
}

Result<HostPoints::Counts> HostPoints::read(
    std::string_view host, std::uint64_t from, std::uint64_t to,
    const std::function<bool()>& out_of_time,
    const std::function<void(const ProcessPoint&)>& on_point) {
  std::uint64_t widest = 0;
  {
    auto use = widest_.use();
    auto row = use->step();
    if (!row.ok()) return row.error();
    if (*row) widest = use->column_u64(0);
  }
  Counts counts;
  auto use = chunks_.use();
  use->bind(1, host).bind(2, from - std::min(from, widest)).bind(3, to).bind(4, from);
  for (;;) {
    auto row = use->step();
    if (!row.ok()) return row.error();
    if (!*row) return counts;
    if (out_of_time()) return Error("interrupted");
    auto decoded = decode_chunk(use->column_blob(1));
    if (!decoded.ok()) return decoded.error().context(fmt::format("chunk {}", use->column_int(0)));
    counts.samples += decoded->size();
    for (const ChunkSample& s : *decoded) {
      if (!s.is_process || s.ts_ns < from || s.ts_ns >= to) continue;
      auto found = groups_.find(names_, s.names_id);
      if (!found.ok()) return found.error();
      if (*found == nullptr) {  // deleted with its last chunk by retention
        ++counts.names_missing;
        continue;
      }
      const ProcessGroups& n = **found;
      on_point(ProcessPoint{s.ts_ns, n.pid, n.start_time_ns, s.cpu_ns, s.rss_bytes, n.comm,
                            n.cgroup, n.key});
    }
  }
}

}  // namespace tally::collector
