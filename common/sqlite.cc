#include "tally/sqlite.h"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include "tally/log.h"

namespace tally::sql {
namespace {

// Binding or reading a column out of range can only be a bug in this library.
void check_bind(int rc, std::string_view sql) {
  if (rc != SQLITE_OK) {
    log::error("sqlite bind failed ({}) for: {}", sqlite3_errstr(rc), sql);
    std::abort();
  }
}

// The OS error is what tells "No space left on device" from "Permission
// denied"; SQLite keeps it per connection (sqlite3_system_errno, since 3.12).
bool has_os_cause(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_IOERR || primary == SQLITE_FULL || primary == SQLITE_CANTOPEN;
}

}  // namespace

Result<Database> Database::open(const std::filesystem::path& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  Database db(raw, path);  // owns raw even on failure: sqlite3_open_v2 allocates it anyway
  if (rc != SQLITE_OK) {
    if (raw == nullptr) return Error::format("open {}: {}", path.string(), sqlite3_errstr(rc));
    return db.error("open", rc);
  }
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Result<Database> Database::open(const std::filesystem::path& path, Mode mode) {
  const int access =
      mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  return open(path, access | SQLITE_OPEN_NOMUTEX);
}

Database::~Database() { close(); }

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      injected_commit_rc_(other.injected_commit_rc_) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    injected_commit_rc_ = other.injected_commit_rc_;
  }
  return *this;
}

void Database::close() {
  // sqlite3_close_v2 defers the close until every statement is finalized, so
  // member destruction order between a Database and its statements does not matter.
  if (db_ != nullptr) sqlite3_close_v2(db_);
  db_ = nullptr;
}

std::int64_t Database::changes() const { return sqlite3_changes64(db_); }

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

Status Database::exec(std::string_view sql) {
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error(fmt::format("run \"{}\" on", text), rc);
  return ok_status();
}

Result<std::int64_t> Database::query_int(std::string_view sql) {
  auto stmt = Statement::prepare(*this, sql);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return Error::format("\"{}\" on {} returned no row", sql, path_.string());
  return stmt->column_int(0);
}

Result<std::string> Database::query_text(std::string_view sql) {
  auto stmt = Statement::prepare(*this, sql);
  if (!stmt) return stmt.error();
  auto row = stmt->step();
  if (!row) return row.error();
  if (!*row) return Error::format("\"{}\" on {} returned no row", sql, path_.string());
  return std::string(stmt->column_text(0));
}

Error Database::error(std::string_view what, int rc) const {
  std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  int os = 0;
  if (db_ != nullptr && has_os_cause(rc)) {
    os = sqlite3_system_errno(db_);
    if (os != 0) message += fmt::format(" ({})", std::strerror(os));
  }
  last_error_disk_full_ = (rc & 0xff) == SQLITE_FULL || os == ENOSPC || os == EDQUOT;
  return Error::format("{} {}: {}", what, path_.string(), message);
}

int Database::take_injected_commit_failure() { return std::exchange(injected_commit_rc_, 0); }

Result<Statement> Statement::prepare(Database& db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  // PERSISTENT: these statements live as long as the connection.
  const int rc = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  if (rc != SQLITE_OK) return db.error(fmt::format("prepare \"{}\" on", sql), rc);
  return Statement(&db, raw, std::string(sql));
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      sql_(std::move(other.sql_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    sql_ = std::move(other.sql_);
  }
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  check_bind(sqlite3_bind_int64(stmt_, index, value), sql_);
  return *this;
}

Statement& Statement::bind(int index, std::uint64_t value) {
  // SQLite integers are signed: saturate rather than wrap, so that UINT64_MAX
  // ("any time", "any seq") still compares above every stored value.
  // Sequence numbers and ns timestamps themselves stay far below 2^63.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return bind(index, static_cast<std::int64_t>(std::min(value, kMax)));
}

Statement& Statement::bind_text(int index, std::string_view value) {
  check_bind(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_STATIC, SQLITE_UTF8),
      sql_);
  return *this;
}

Statement& Statement::bind_null(int index) {
  check_bind(sqlite3_bind_null(stmt_, index), sql_);
  return *this;
}

Statement& Statement::bind_blob(int index, std::string_view bytes) {
  // A zero-length blob must not bind as NULL (data() of an empty view may be).
  static const char kEmpty = 0;
  const char* data = bytes.empty() ? &kEmpty : bytes.data();
  check_bind(sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_STATIC), sql_);
  return *this;
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->error(fmt::format("\"{}\" on", sql_), rc);
}

Status Statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return row.error();
    if (!*row) return ok_status();
  }
}

std::int64_t Statement::column_int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::uint64_t Statement::column_u64(int column) const {
  return static_cast<std::uint64_t>(sqlite3_column_int64(stmt_, column));
}

bool Statement::column_is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::string_view Statement::column_text(int column) const {
  const auto* data = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), static_cast<std::size_t>(size)};
}

std::string_view Statement::column_blob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr) return {};
  return {static_cast<const char*>(data), static_cast<std::size_t>(size)};
}

std::int64_t Statement::changes() const { return sqlite3_changes64(db_->handle()); }

void Statement::reset() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Result<Transaction> Transaction::begin(Database& db, Kind kind) {
  const int rc = sqlite3_exec(db.handle(), kind == Kind::write ? "BEGIN IMMEDIATE" : "BEGIN",
                              nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return db.error("begin transaction on", rc);
  return Transaction(&db);
}

Transaction::~Transaction() { rollback(); }

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Status Transaction::commit() {
  Database* db = std::exchange(db_, nullptr);
  if (const int injected = db->take_injected_commit_failure(); injected != 0) {
    sqlite3_exec(db->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    return Error::format("commit {}: {} (injected)", db->path().string(), sqlite3_errstr(injected));
  }
  const int rc = sqlite3_exec(db->handle(), "COMMIT", nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return ok_status();
  Error err = db->error("commit", rc);
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY) or may
  // already have rolled it back (I/O errors, SQLITE_FULL): finish the job.
  db_ = db;
  rollback();
  return err;
}

void Transaction::rollback() {
  if (db_ == nullptr) return;
  Database* db = std::exchange(db_, nullptr);
  // SQLite rolls back by itself after some errors; ROLLBACK without an open
  // transaction would only add a confusing second error.
  if (sqlite3_get_autocommit(db->handle()) != 0) return;
  const int rc = sqlite3_exec(db->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) log::error("{}", db->error("roll back", rc).message());
}

}  // namespace tally::sql
