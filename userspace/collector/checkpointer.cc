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

// Other uses of the connection (opening it) may wait this long.
constexpr auto kBusyTimeout = std::chrono::seconds(5);

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::open(const std::string& path,
                                                         Thresholds thresholds) {
  auto db = sql::Database::open(path, sql::Database::Mode::read_write_create);
  if (!db.ok()) return db.error().context("open checkpoint connection");
  std::unique_ptr<Checkpointer> self(new Checkpointer(std::move(db).value(), thresholds));
  // A handler of our own rather than busy_timeout: a TRUNCATE checkpoint
  // holds the writer back while it waits, so it must give up early.
  sqlite3_busy_handler(self->db_.handle(), &Checkpointer::on_busy, self.get());
  self->busy_deadline_ = std::chrono::steady_clock::now() + kBusyTimeout;
  // A connection learns that the file is in WAL mode when it first reads
  // it; until then sqlite3_wal_checkpoint_v2() does nothing (and says -1).
  auto tables = self->db_.query_int("SELECT count(*) FROM sqlite_schema");
  if (!tables.ok()) return tables.error().context("open checkpoint connection");
  return self;
}

Checkpointer::Checkpointer(sql::Database db, Thresholds thresholds)
    : db_(std::move(db)),
      thresholds_(thresholds),
      next_truncate_pages_(thresholds.restart_pages) {}

Checkpointer::~Checkpointer() { thread_.join(); }

int Checkpointer::on_busy(void* self, int /*attempts*/) {
  auto* me = static_cast<Checkpointer*>(self);
  if (std::chrono::steady_clock::now() >= me->busy_deadline_) return 0;
  sqlite3_sleep(1);  // ms: a reader or the writer is about to finish
  return 1;
}

Status Checkpointer::attach(sql::Database& writer) {
  TALLY_TRY_CTX(writer.exec("PRAGMA wal_autocheckpoint=0"), "turn off auto-checkpoints");
  sqlite3_wal_hook(writer.handle(), &on_wal_commit, this);
  return ok_status();
}

void Checkpointer::wal_grew(int wal_pages) {
  if (wal_pages < thresholds_.passive_pages || pending_.exchange(true)) return;
  boost::asio::post(thread_, [this, wal_pages] { checkpoint(wal_pages); });
}

void Checkpointer::checkpoint(int wal_pages) {
  int log_pages = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_.handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                     &copied);
  if (rc == SQLITE_OK && log_pages < thresholds_.restart_pages) {
    next_truncate_pages_ = thresholds_.restart_pages;  // the log started over by itself
  } else if (rc == SQLITE_OK && log_pages >= next_truncate_pages_) {
    next_truncate_pages_ = truncate(log_pages) ? thresholds_.restart_pages
                                               : log_pages + thresholds_.passive_pages;
  }
  pending_ = false;
  if (rc != SQLITE_OK) {
    // Not fatal: the WAL only grows until a later checkpoint succeeds.
    if (!failing_) log::warning("{}", db_.error("checkpoint WAL of", rc).message());
    failing_ = true;
    return;
  }
  if (failing_) log::info("checkpointing the WAL works again");
  failing_ = false;
  log::debug("checkpoint: {} of {} WAL pages copied ({} at the commit)", copied, log_pages,
             wal_pages);
}

// True when the WAL was emptied.
bool Checkpointer::truncate(int wal_pages) {
  busy_deadline_ = std::chrono::steady_clock::now() + thresholds_.max_stall;
  int log_pages = 0, copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_.handle(), "main", SQLITE_CHECKPOINT_TRUNCATE,
                                           &log_pages, &copied);
  busy_deadline_ = std::chrono::steady_clock::now() + kBusyTimeout;
  if (rc == SQLITE_OK) {
    if (truncate_failing_) log::info("the WAL of {} is emptied again", db_.path().string());
    truncate_failing_ = false;
    log::debug("checkpoint: WAL of {} pages emptied", wal_pages);
    return true;
  }
  // SQLITE_BUSY: the writer or a reader held on for longer than max_stall.
  if (!truncate_failing_) {
    log::warning("{} (WAL at {} pages); trying again as it grows",
                 db_.error("empty the WAL of", rc).message(), wal_pages);
  }
  truncate_failing_ = true;
  return false;
}

}  // namespace tally::collector
