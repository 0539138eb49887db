// RAII owners for a SQLite connection, a prepared statement and a
// transaction, shared by the outbox (queue/) and tally-collector: errors name
// the database file and carry SQLite's message (and the OS error behind an
// I/O failure); sqlite3 itself stays out of every header but this one's
// forward declarations. Link tally_sqlite to use it.
//
// Not thread-safe: a Database and everything made from it belong to one
// thread at a time (the outbox serialises on its mutex, the collector gives
// each connection its own thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "tally/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tally::sql {

class Database {
 public:
  enum class Mode { read_write_create, read_only };

  // Opens with SQLITE_OPEN_* flags, without running any statement, so a file
  // that is not a database is only detected by the first query.
  static Result<Database> open(const std::filesystem::path& path, int flags);
  // The same, for a connection confined to one thread (SQLITE_OPEN_NOMUTEX).
  static Result<Database> open(const std::filesystem::path& path, Mode mode);

  Database() = default;
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() const { return db_; }
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
  // Whether the last failure error() described was for lack of space
  // (SQLITE_FULL, or an I/O error whose OS cause is ENOSPC or EDQUOT): a
  // full disk is a state to report and wait out, not a damaged file.
  bool last_error_was_disk_full() const { return last_error_disk_full_; }
  void clear_last_error() { last_error_disk_full_ = false; }

  // Failure-injection seam for tests: the next Transaction::commit() on this
  // connection rolls back and fails as if SQLite had returned rc.
  void fail_next_commit(int rc) { injected_commit_rc_ = rc; }
  int take_injected_commit_failure();

 private:
  Database(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  void close();

  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  int injected_commit_rc_ = 0;
  mutable bool last_error_disk_full_ = false;  // set by error()
};

// A statement prepared once and reused. Bind and column indexes follow SQLite
// (bind from 1, as in ?1; columns from 0). Binding out of range is a
// programming error and aborts. Text and blob binds do not copy: the bound
// memory must outlive step(). Borrow it through use(), whose guard resets it
// and clears its bindings at the end of the scope, so no use sees another's
// leftovers and no read stays open by accident.
class Statement {
 public:
  static Result<Statement> prepare(Database& db, std::string_view sql);

  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Integers are stored signed: a uint64 above 2^63-1 saturates there, so
  // UINT64_MAX ("any time", "any seq") still compares above every value.
  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::uint64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
  Statement& bind(int index, std::uint32_t value) {
    return bind(index, static_cast<std::int64_t>(value));
  }
  Statement& bind(int index, std::string_view text) { return bind_text(index, text); }
  template <typename T>
  Statement& bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind_null(index);
  }
  Statement& bind_text(int index, std::string_view value);
  Statement& bind_blob(int index, std::string_view bytes);
  Statement& bind_null(int index);

  // true: a row is available; false: done.
  Result<bool> step();
  // Steps to completion, for statements whose rows do not matter.
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

  std::int64_t column_int(int column) const;
  std::uint64_t column_u64(int column) const;
  bool column_is_null(int column) const;
  // Views stay valid until the next step() or reset().
  std::string_view column_text(int column) const;
  std::string_view column_blob(int column) const;
  // Rows changed by the last run() on this statement's connection.
  std::int64_t changes() const;

  // Resets and clears bindings so the statement can be reused.
  void reset();

  class Use {
   public:
    explicit Use(Statement& s) : s_(s) {}
    ~Use() { s_.reset(); }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;
    Statement* operator->() { return &s_; }
    Statement& operator*() { return s_; }

   private:
    Statement& s_;
  };
  // Borrow for one use: `auto q = stmt.use(); q->bind(1, x).step()`.
  Use use() { return Use(*this); }

 private:
  Statement(Database* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}

  Database* db_ = nullptr;  // for error messages; outlives the statement
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

// One statement of a store's table: its id (an enum ending in count_) and
// its SQL.
template <typename Id>
struct StatementSql {
  Id id;
  std::string_view sql;
};

// Whether a table lists every id of Id once, in enum order; stores
// static_assert it, so that a statement added to the enum without its SQL
// (or the other way round) does not compile.
template <typename Id, std::size_t N>
constexpr bool lists_every_id_in_order(const StatementSql<Id> (&table)[N]) {
  if (N != static_cast<std::size_t>(Id::count_)) return false;
  for (std::size_t i = 0; i < N; ++i) {
    if (static_cast<std::size_t>(table[i].id) != i) return false;
  }
  return true;
}

// Every SQL statement a store runs after open, prepared once from its table
// and reused (reset after each use by Statement::Use).
template <typename Id>
class StatementTable {
 public:
  template <std::size_t N>
  static Result<StatementTable> prepare(Database& db, const StatementSql<Id> (&table)[N]) {
    static_assert(N == static_cast<std::size_t>(Id::count_));
    StatementTable out;
    for (const StatementSql<Id>& entry : table) {
      auto stmt = Statement::prepare(db, entry.sql);
      if (!stmt.ok()) return stmt.error();
      out.stmts_[static_cast<std::size_t>(entry.id)] = std::move(stmt).value();
    }
    return out;
  }

  // Borrow for one use: `auto q = table.use(Id::x); q->bind(...)`.
  Statement::Use use(Id id) { return stmts_[static_cast<std::size_t>(id)].use(); }
  // The statement itself, for a helper that borrows it.
  Statement& get(Id id) { return stmts_[static_cast<std::size_t>(id)]; }

 private:
  std::array<Statement, static_cast<std::size_t>(Id::count_)> stmts_;
};

// BEGIN ... COMMIT, rolled back by the destructor unless commit() succeeded,
// so every early return leaves the database as it was. A write transaction
// is BEGIN IMMEDIATE: it takes the write lock up front, so a busy database
// fails here rather than half-way through the work. A read transaction gives
// several queries one consistent snapshot.
class Transaction {
 public:
  enum class Kind { write, read };
  static Result<Transaction> begin(Database& db, Kind kind = Kind::write);

  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // On failure the transaction has been rolled back.
  Status commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  void rollback();

  Database* db_ = nullptr;
};

}  // namespace tally::sql
