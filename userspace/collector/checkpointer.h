// Moves WAL checkpoints off the request path, and keeps the WAL bounded.
//
// By default SQLite checkpoints inside the COMMIT that takes the WAL past
// 1,000 pages: that request then also copies the WAL into the database and
// fsyncs it before the collector can answer. Instead the writer connection
// turns auto-checkpoints off and, after each commit, tells the Checkpointer
// how large the WAL is; past a threshold the Checkpointer copies it back on
// its own connection and thread, in PASSIVE mode, which never blocks the
// writer or the readers (sqlite.org/wal.html#ckpt, c3ref/wal_checkpoint_v2.html).
//
// PASSIVE alone does not bound the WAL: the log restarts from its beginning
// only when a checkpoint has copied all of it and no reader still uses it,
// which under constant writes, or with queries always running, never
// happens ("checkpoint starvation", wal.html#avoiding_excessively_large_wal_files:
// 23.6 GB of WAL for a 3 GB database). So when the WAL reaches restart_pages
// the Checkpointer follows the PASSIVE checkpoint with a RESTART one: it
// holds the writer back while it copies the few frames PASSIVE left, waits
// for the readers of older snapshots to finish, and has the log start over
// from its beginning (journal_size_limit, store_schema.cc, keeps the file at
// about that size; TRUNCATE, which also empties the file, measured twice
// the writer's wait). It waits at most max_stall for either (queries have a
// time limit of their own); if that is not enough it gives up, lets the
// writer go on, and tries again once the WAL has grown by another threshold.
//
// Thread safety: wal_grew() may be called from any thread; the rest is the
// owner's.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

class Checkpointer {
 public:
  struct Thresholds {
    int passive_pages = 1000;
    int restart_pages = 4000;
    std::chrono::milliseconds max_stall{250};
  };

  // Opens its own connection to an existing database in WAL mode.
  static Result<std::unique_ptr<Checkpointer>> open(const std::string& path, Thresholds thresholds);
  // Finishes a checkpoint in progress, then closes the connection.
  ~Checkpointer();

  // Turns the writer connection's auto-checkpoints off and has it call
  // wal_grew() after every commit (from the writer's thread). The hook refers
  // to this Checkpointer: close `writer` before destroying it.
  Status attach(sql::Database& writer);

  // Schedules a checkpoint when the WAL holds at least the threshold and none
  // is pending. Cheap: called after every commit.
  void wal_grew(int wal_pages) noexcept;

 private:
  Checkpointer(sql::Database db, Thresholds thresholds);
  void checkpoint(int wal_pages);
  bool restart(int wal_pages);
  static int on_busy(void* self, int attempts);

  sql::Database db_;
  const Thresholds thresholds_;
  std::atomic<bool> pending_{false};
  // Checkpoint thread only:
  bool failing_ = false;  // log state changes once
  bool restart_failing_ = false;
  int next_restart_pages_;  // after a failed RESTART: not before this
  std::chrono::steady_clock::time_point busy_deadline_;
  boost::asio::thread_pool thread_{1};
};

}  // namespace tally::collector
