#include "checkpointer.h"

#include <sqlite3.h>

#include <boost/asio/post.hpp>

#include "tally/log.h"

namespace tally::collector {

namespace {

// sqlite3_wal_hook's callback (sqlite.org/c3ref/wal_hook.html): runs on the
// writer's thread right after a commit, outside any transaction.
int on_wal_commit(void* self, sqlite3* /*db*/, const char* /*schema*/, int pages) {
  static_cast<Checkpointer*>(self)->wal_grew(pages);
  return SQLITE_OK;
}

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::open(const std::string& path,
                                                         int threshold_pages) {
  auto db = sql::Database::open(path, sql::Database::Mode::read_write_create);
  if (!db.ok()) return db.error().context("open checkpoint connection");
  TALLY_TRY_CTX(db->exec("PRAGMA busy_timeout=5000"), "open checkpoint connection");
  // A connection learns that the file is in WAL mode when it first reads
  // it; until then sqlite3_wal_checkpoint_v2() does nothing (and says -1).
  auto tables = db->query_int("SELECT count(*) FROM sqlite_schema");
  if (!tables.ok()) return tables.error().context("open checkpoint connection");
  return std::unique_ptr<Checkpointer>(new Checkpointer(std::move(db).value(), threshold_pages));
}

Checkpointer::Checkpointer(sql::Database db, int threshold_pages)
    : db_(std::move(db)), threshold_pages_(threshold_pages) {}

Checkpointer::~Checkpointer() { thread_.join(); }

Status Checkpointer::attach(sql::Database& writer) {
  TALLY_TRY_CTX(writer.exec("PRAGMA wal_autocheckpoint=0"), "turn off auto-checkpoints");
  sqlite3_wal_hook(writer.handle(), &on_wal_commit, this);
  return ok_status();
}

void Checkpointer::wal_grew(int wal_pages) noexcept {
  if (wal_pages < threshold_pages_ || pending_.exchange(true)) return;
  // No exception may leave: this runs inside SQLite's C frames, and the
  // lambda on the pool's thread, whose exception would terminate the
  // collector. Only allocation (a log line, the post) can throw; a later
  // commit then schedules the checkpoint again.
  try {
    boost::asio::post(thread_, [this] {
      try {
        checkpoint();
      } catch (...) {
        pending_ = false;
      }
    });
  } catch (...) {
    pending_ = false;
  }
}

void Checkpointer::checkpoint() {
  int log_pages = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_.handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                     &copied);
  pending_ = false;
  if (rc != SQLITE_OK) {
    // Not fatal: the WAL only grows until a later checkpoint succeeds.
    if (!failing_) log::warning("{}", db_.error("checkpoint WAL of", rc).message());
    failing_ = true;
    return;
  }
  if (failing_) log::info("checkpointing the WAL works again");
  failing_ = false;
  log::debug("checkpoint: {} of {} WAL pages copied", copied, log_pages);
}

}  // namespace tally::collector
