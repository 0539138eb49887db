// Every SQL statement the outbox runs after open, prepared once from one
// table and reused (reset after each use by sql::Statement::Use).
#pragma once

#include <array>
#include <cstddef>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::queue {

enum class Q : std::size_t {
  meta_get,
  meta_set,
  sink_list,
  sink_insert,
  sink_set_acked,
  staged_insert,
  staged_read,
  staged_clear,
  batch_insert,
  batch_delete,
  batch_oldest_data,
  batch_oldest_created,
  batch_get,
  delivery_insert,
  delivery_delete,
  delivery_sinks_of,
  delivery_delete_all_of,
  delivery_any_left,
  delivery_fail,
  delivery_next_ready,
  delivery_pending,
  delivery_head,
  delivery_count,
  dead_insert,
  dead_oldest,
  dead_delete,
  batch_min_seq,
  dict_insert,
  dict_get,
  dict_retire,
  dict_settle,
  dict_prune,
  count_,
};

using Statements = sql::StatementTable<Q>;

// The outbox's table (statements.cc), prepared.
Result<Statements> prepare_statements(sql::Database& db);

}  // namespace tally::queue
