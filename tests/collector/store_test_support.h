// Helpers for the tests of the store against real SQLite files: a body
// decoded as the server would, one value read with a separate connection,
// and a fixture holding a BatchStore and a QueryStore on a new database.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>

#include "collector/batch_store.h"
#include "collector/query_store.h"
#include "collector/request_decoder.h"
#include "collector/sample_chunk.h"
#include "temp_dir.h"

namespace tally::collector::test_support {

inline BatchRequest decoded(const std::string& body) {
  Decoded d = decode_batch_request("application/json", "", body, {});
  if (auto* r = std::get_if<Rejection>(&d)) {
    ADD_FAILURE() << r->message;
    return {};
  }
  return std::get<BatchRequest>(std::move(d));
}

// The first column of the first row of `sql`, as text ("" without a row).
inline std::string query_text(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  std::string text;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return text;
}

// The same as an integer (-1 without a row).
inline std::int64_t count_rows(const std::string& db_path, const std::string& sql) {
  const std::string text = query_text(db_path, sql);
  return text.empty() ? -1 : std::stoll(text);
}

// Samples of every chunk that keep their text (sample_chunk.h), or -1
// when a chunk cannot be read.
inline std::int64_t verbatim_samples(const std::string& db_path) {
  sqlite3* db = nullptr;
  std::int64_t count = 0;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) return -1;
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "SELECT data FROM chunks", -1, &stmt, nullptr);
  while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 0));
    auto samples = decode_chunk(std::string_view(data, sqlite3_column_bytes(stmt, 0)));
    if (!samples.ok()) {
      count = -1;
      break;
    }
    for (const ChunkSample& s : *samples) count += s.verbatim ? 1 : 0;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return count;
}

// The writer and a reader of a database in a new directory (durability
// normal: the tests do not need the fsyncs).
class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override { open_stores(); }

  void open_stores(QueryLimits limits = {}) {
    BatchStore::Options options;
    options.path = db_;
    options.durability = Durability::normal;
    auto store = BatchStore::open(options);
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(store).value();
    reopen_queries(limits);
  }

  void reopen_queries(QueryLimits limits = {}) {
    queries_.reset();
    auto queries = QueryStore::open(db_, limits);
    ASSERT_TRUE(queries.ok()) << queries.error().message();
    queries_ = std::move(queries).value();
  }

  StoreOutcome store(const std::string& body) {
    auto outcome = store_->store(decoded(body));
    if (!outcome.ok()) {
      ADD_FAILURE() << outcome.error().message();
      return {};
    }
    return *outcome;
  }

  tally::test::TempDir dir_;
  std::string db_ = dir_ / "collector.db";
  std::unique_ptr<BatchStore> store_;
  std::unique_ptr<QueryStore> queries_;
};

}  // namespace tally::collector::test_support
