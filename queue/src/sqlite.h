// RAII owners for a SQLite connection, a prepared statement and a write
// transaction, with errors that name the database file and carry SQLite's own
// message. Internal to the queue library: sqlite3 stays out of public headers.
//
// Not thread-safe: one Db and everything made from it belong to one thread at
// a time (the Outbox serialises access with its mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "tally/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tally::queue::sql {

class Db {
 public:
  // Opens (flags: SQLITE_OPEN_* bits) without running any statement, so a
  // file that is not a database is only detected by the first query.
  static Result<Db> open(const std::filesystem::path& path, int flags);

  Db() = default;
  ~Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() const { return db_; }
  const std::filesystem::path& path() const { return path_; }

  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const;
  std::int64_t last_insert_rowid() const;

  // Runs one or more statements that return no rows of interest.
  Status exec(std::string_view sql);
  // Runs a statement returning one integer (e.g. "PRAGMA user_version").
  Result<std::int64_t> query_int(std::string_view sql);
  // Runs a statement returning one text value (e.g. "PRAGMA journal_mode=WAL").
  Result<std::string> query_text(std::string_view sql);

  // "<what> <path>: <sqlite message> [(<os error>)]" for a failed call that
  // returned rc. Reads the connection's error state, so call it right away.
  Error error(std::string_view what, int rc) const;

  // Failure-injection seam for tests: the next Transaction::commit() on this
  // connection rolls back and fails as if SQLite had returned rc.
  void fail_next_commit(int rc) { injected_commit_rc_ = rc; }
  int take_injected_commit_failure();

 private:
  Db(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  void close();

  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  int injected_commit_rc_ = 0;
};

// A prepared statement. Bind and column indexes follow SQLite (bind from 1,
// columns from 0). Binding out of range is a programming error and aborts.
// Text and blob binds do not copy: the bound memory must outlive step().
class Stmt {
 public:
  static Result<Stmt> prepare(Db& db, std::string_view sql);

  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int index, std::int64_t value);
  Stmt& bind(int index, std::uint64_t value);
  Stmt& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Stmt& bind(int index, std::uint32_t value) { return bind(index, static_cast<std::int64_t>(value)); }
  Stmt& bind_text(int index, std::string_view value);
  Stmt& bind_blob(int index, std::string_view bytes);

  // true: a row is available; false: done.
  Result<bool> step();
  // Steps to completion, for statements that return no rows.
  Status run();

  std::int64_t column_int(int column) const;
  std::uint64_t column_u64(int column) const;
  bool column_is_null(int column) const;
  // Views stay valid until the next step() or reset().
  std::string_view column_text(int column) const;
  std::string_view column_blob(int column) const;

  // Resets and clears bindings so the statement can be reused.
  void reset();

 private:
  Stmt(Db* db, sqlite3_stmt* stmt, std::string sql) : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

  Db* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// Borrows a cached statement for one use and resets it when it goes out of
// scope, so a failed or abandoned step never leaves a read open.
class StmtUse {
 public:
  explicit StmtUse(Stmt& stmt) : stmt_(stmt) {}
  ~StmtUse() { stmt_.reset(); }
  StmtUse(const StmtUse&) = delete;
  StmtUse& operator=(const StmtUse&) = delete;
  Stmt* operator->() { return &stmt_; }
  Stmt& operator*() { return stmt_; }

 private:
  Stmt& stmt_;
};

// BEGIN IMMEDIATE ... COMMIT. Rolls back in the destructor unless commit()
// succeeded, so every early return leaves the database as it was.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db);

  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // On failure the transaction has been rolled back.
  Status commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  void rollback();

  Db* db_ = nullptr;
};

}  // namespace tally::queue::sql
