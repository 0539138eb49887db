#include "sqlite.h"

#include <sqlite3.h>

#include <utility>

namespace tally::collector::sql {

Result<Database> Database::open(const std::string& path, Mode mode) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX;  // each connection is confined to one thread
  flags |=
      mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  Database owner(db, path);  // sqlite3_open_v2 allocates a handle even on failure
  if (rc != SQLITE_OK) {
    return Error::format("open database {}: {}", path,
                         db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  }
  sqlite3_extended_result_codes(db, 1);
  return owner;
}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

Database::~Database() {
  // close_v2: safe even if a statement outlived us by mistake.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

Error Database::error(std::string_view what) const {
  return Error::format("{} ({}): {}", what, path_, sqlite3_errmsg(db_));
}

Status Database::exec(std::string_view sql) {
  std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return error(text);
  }
  return ok_status();
}

Result<std::int64_t> Database::query_int(std::string_view sql) {
  auto stmt = Statement::prepare(*this, sql);
  if (!stmt.ok()) return stmt.error();
  auto use = stmt->use();
  auto row = use.step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::format("{}: no row", sql);
  return use.column_int(0);
}

Result<Statement> Statement::prepare(Database& db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  // PERSISTENT: these live as long as the connection (sqlite.org/c3ref/c_prepare_normalize.html).
  int rc = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return db.error(fmt::format("prepare \"{}\"", sql));
  return Statement(stmt, &db);
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)), db_(other.db_) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    db_ = other.db_;
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Statement::Use::~Use() {
  sqlite3_reset(s_.stmt_);
  sqlite3_clear_bindings(s_.stmt_);
}

Statement::Use& Statement::Use::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(s_.stmt_, i, v);
  return *this;
}

Statement::Use& Statement::Use::bind(int i, std::uint64_t v) {
  return bind(i, static_cast<std::int64_t>(v));
}

Statement::Use& Statement::Use::bind(int i, std::string_view v) {
  // SQLITE_STATIC: the caller's string outlives the step.
  sqlite3_bind_text(s_.stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  return *this;
}

Statement::Use& Statement::Use::bind_null(int i) {
  sqlite3_bind_null(s_.stmt_, i);
  return *this;
}

Result<bool> Statement::Use::step() {
  int rc = sqlite3_step(s_.stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return s_.db_->error(fmt::format("run \"{}\"", sqlite3_sql(s_.stmt_)));
}

Status Statement::Use::run() {
  auto row = step();
  if (!row.ok()) return row.error();
  return ok_status();
}

std::int64_t Statement::Use::column_int(int i) const { return sqlite3_column_int64(s_.stmt_, i); }

std::string_view Statement::Use::column_text(int i) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_.stmt_, i));
  if (p == nullptr) return {};
  return std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_.stmt_, i)));
}

bool Statement::Use::column_is_null(int i) const {
  return sqlite3_column_type(s_.stmt_, i) == SQLITE_NULL;
}

int Statement::Use::changes() const { return sqlite3_changes(sqlite3_db_handle(s_.stmt_)); }

Result<Transaction> Transaction::begin(Database& db, Kind kind) {
  TALLY_TRY_CTX(db.exec(kind == Kind::write ? "BEGIN IMMEDIATE" : "BEGIN"), "begin transaction");
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(other.db_), open_(std::exchange(other.open_, false)) {}

Transaction::~Transaction() {
  if (!open_) return;
  // Nothing to report to: the error that made us skip commit() already went
  // to the caller. ROLLBACK fails harmlessly if SQLite already rolled back
  // (it does on SQLITE_FULL and some I/O errors).
  (void)db_->exec("ROLLBACK");
}

Status Transaction::commit() {
  Status s = db_->exec("COMMIT");
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace tally::collector::sql
