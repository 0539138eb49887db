// RAII wrappers over the SQLite C API, shaped after Bitcoin Core's
// src/wallet/sqlite.cpp: a connection, statements prepared once and reset
// after every use, and a transaction guard that rolls back unless committed.
// sqlite3 itself stays out of every header but this one's forward
// declarations.
//
// Thread safety: a Database and its Statements belong to one thread at a
// time (the collector gives each connection its own thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tally/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tally::collector::sql {

class Database {
 public:
  enum class Mode { read_write_create, read_only };

  static Result<Database> open(const std::string& path, Mode mode);
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs SQL that returns no rows (DDL, PRAGMA assignments, BEGIN...).
  Status exec(std::string_view sql);
  // Runs a statement returning one integer, e.g. "PRAGMA user_version".
  Result<std::int64_t> query_int(std::string_view sql);

  // Rowid of the last row inserted on this connection.
  std::int64_t last_insert_rowid() const;

  // "<what>: <sqlite message>", with the database path, for the last failure.
  Error error(std::string_view what) const;
  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A statement prepared once and reused. Every use goes through a Use guard,
// which resets it and clears its bindings when the scope ends, so no use
// sees another's leftovers and no read transaction is held open by accident.
class Statement {
 public:
  static Result<Statement> prepare(Database& db, std::string_view sql);
  Statement() = default;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  class Use {
   public:
    explicit Use(Statement& s) : s_(s) {}
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

    // Parameters are numbered from 1, as in SQL's ?1.
    Use& bind(int i, std::int64_t v);
    Use& bind(int i, std::uint64_t v);  // must be <= 2^63-1 (checked by the decoder)
    Use& bind(int i, std::string_view v);
    template <typename T>
    Use& bind(int i, const std::optional<T>& v) {
      return v ? bind(i, static_cast<std::uint64_t>(*v)) : bind_null(i);
    }
    Use& bind_null(int i);

    // True when a row is ready, false when done.
    Result<bool> step();
    // Steps a statement that returns no rows.
    Status run();
    // Steps through every row, calling on_row(*this) for each.
    template <typename F>
    Status each_row(F&& on_row) {
      for (;;) {
        auto row = step();
        if (!row.ok()) return row.error();
        if (!*row) return ok_status();
        on_row(*this);
      }
    }

    std::int64_t column_int(int i) const;
    std::uint64_t column_u64(int i) const { return static_cast<std::uint64_t>(column_int(i)); }
    std::string_view column_text(int i) const;
    bool column_is_null(int i) const;
    // Rows changed by the last run() (sqlite3_changes).
    int changes() const;

   private:
    Statement& s_;
  };

  Use use() { return Use(*this); }

 private:
  Statement(sqlite3_stmt* stmt, Database* db) : stmt_(stmt), db_(db) {}
  sqlite3_stmt* stmt_ = nullptr;
  Database* db_ = nullptr;  // for error messages; outlives the statement
};

// Prepares sql[i] into stmts[i] for every i: the statement table of a store.
template <std::size_t N>
Status prepare_all(Database& db, const std::array<const char*, N>& sql,
                   std::array<Statement, N>& stmts) {
  for (std::size_t i = 0; i < N; ++i) {
    auto stmt = Statement::prepare(db, sql[i]);
    if (!stmt.ok()) return stmt.error();
    stmts[i] = std::move(stmt).value();
  }
  return ok_status();
}

// BEGIN ... COMMIT, rolled back by the destructor unless commit() succeeded.
// A write transaction is BEGIN IMMEDIATE: it takes the write lock up front,
// so it cannot fail half-way with SQLITE_BUSY on lock upgrade. A read
// transaction gives several queries one consistent snapshot.
class Transaction {
 public:
  enum class Kind { write, read };
  static Result<Transaction> begin(Database& db, Kind kind = Kind::write);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
  bool open_ = true;
};

}  // namespace tally::collector::sql
