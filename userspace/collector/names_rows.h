// The names table (store_schema.h): each (agent, process, names) once, found
// again by its digest (names_digest.h) and text. Used by the batch store for
// every body that carries names, and by the schema 5 upgrade for rows that
// held their names in their JSON.
#pragma once

#include <cstdint>

#include "collector/batch_request.h"
#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

class NamesRows {
 public:
  static Result<NamesRows> prepare(sql::Database& db);

  // The row of the names process sample s carries, for `agent`: the one
  // stored before for the same process and text, or a new one.
  Result<std::int64_t> find_or_add(std::int64_t agent, const StoredSample& s);

 private:
  sql::Database* db_ = nullptr;
  sql::Statement find_;
  sql::Statement insert_;
};

}  // namespace tally::collector
