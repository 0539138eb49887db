#include "collector/checkpointer.h"

#include <sqlite3.h>

#include <boost/asio/post.hpp>

#include "tally/log.h"

namespace tally::collector {

namespace {

// The writer's busy handler: about 5 s in 1 ms steps (the busy_timeout it
// replaces), counted in attempts since a sleep can take longer.
int on_writer_busy(void* /*unused*/, int attempts) {
  if (attempts >= 5000) return 0;
  sqlite3_sleep(1);
  return 1;
}

// sqlite3_wal_hook's callback (sqlite.org/c3ref/wal_hook.html): runs on the
// writer's thread right after a commit, outside any transaction.
int on_wal_commit(void* self, sqlite3* /*db*/, const char* /*schema*/, int pages) {
  static_cast<Checkpointer*>(self)->wal_grew(pages);
  return SQLITE_OK;
}

// Other uses of the connection (opening it) may wait this long.
constexpr auto kBusyTimeout = std::chrono::seconds(5);

// Before a RESTART checkpoint, PASSIVE passes until fewer than this many
// pages (1 MiB) arrived during the last one, or this many passes.
constexpr int kCatchUpPages = 64;
constexpr int kCatchUpPasses = 4;

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::open(const std::string& path,
                                                         Thresholds thresholds) {
  auto db = sql::Database::open(path, sql::Database::Mode::read_write_create);
  if (!db.ok()) return db.error().context("open checkpoint connection");
  std::unique_ptr<Checkpointer> self(new Checkpointer(std::move(db).value(), thresholds));
  // A handler of our own rather than busy_timeout: a RESTART checkpoint
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
    : db_(std::move(db)), thresholds_(thresholds), next_restart_pages_(thresholds.restart_pages) {}

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
  // The writer waits for a RESTART checkpoint in steps of a millisecond:
  // SQLite's own busy_timeout sleeps up to 100 ms at a time and would hold
  // it back well after the checkpoint is done.
  sqlite3_busy_handler(writer.handle(), &on_writer_busy, nullptr);
  return ok_status();
}

void Checkpointer::wal_grew(int wal_pages) noexcept {
  if (wal_pages < thresholds_.passive_pages || pending_.exchange(true)) return;
  // No exception may leave: this runs inside SQLite's C frames, and the
  // lambda on the pool's thread, whose exception would terminate the
  // collector. Only allocation (a log line, the post) can throw; a later
  // commit then schedules the checkpoint again.
  try {
    boost::asio::post(thread_, [this, wal_pages] {
      try {
        checkpoint(wal_pages);
      } catch (...) {
        pending_ = false;
      }
    });
  } catch (...) {
    pending_ = false;
  }
}

void Checkpointer::checkpoint(int wal_pages) {
  int log_pages = 0, copied = 0;
  int rc = sqlite3_wal_checkpoint_v2(db_.handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                     &copied);
  if (rc == SQLITE_OK && log_pages < thresholds_.restart_pages) {
    next_restart_pages_ = thresholds_.restart_pages;  // the log started over by itself
  } else if (rc == SQLITE_OK && log_pages >= next_restart_pages_) {
    next_restart_pages_ =
        restart(log_pages) ? thresholds_.restart_pages : log_pages + thresholds_.passive_pages;
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

// True when the WAL starts over.
bool Checkpointer::restart(int wal_pages) {
  // The writer waits while RESTART copies what PASSIVE has not: first let
  // PASSIVE catch up with what the writer added meanwhile, so that little
  // is left (each pass copies only the frames of the last one's duration).
  int log_pages = wal_pages, copied = 0;
  for (int pass = 0; pass < kCatchUpPasses; ++pass) {
    const int before = log_pages;
    if (sqlite3_wal_checkpoint_v2(db_.handle(), "main", SQLITE_CHECKPOINT_PASSIVE, &log_pages,
                                  &copied) != SQLITE_OK ||
        log_pages - before < kCatchUpPages) {
      break;
    }
  }
  busy_deadline_ = std::chrono::steady_clock::now() + thresholds_.max_stall;
  const int rc = sqlite3_wal_checkpoint_v2(db_.handle(), "main", SQLITE_CHECKPOINT_RESTART,
                                           &log_pages, &copied);
  busy_deadline_ = std::chrono::steady_clock::now() + kBusyTimeout;
  if (rc == SQLITE_OK) {
    if (restart_failing_) log::info("the WAL of {} starts over again", db_.path().string());
    restart_failing_ = false;
    log::debug("checkpoint: WAL of {} pages starts over", wal_pages);
    return true;
  }
  // SQLITE_BUSY: the writer or a reader held on for longer than max_stall.
  if (!restart_failing_) {
    log::warning("{} (WAL at {} pages); trying again as it grows",
                 db_.error("restart the WAL of", rc).message(), wal_pages);
  }
  restart_failing_ = true;
  return false;
}

}  // namespace tally::collector
