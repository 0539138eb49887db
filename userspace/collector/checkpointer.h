// Moves WAL checkpoints off the request path.
//
// By default SQLite checkpoints inside the COMMIT that takes the WAL past
// 1,000 pages: that request then also copies the WAL into the database and
// fsyncs it before the collector can answer. Instead the writer connection
// turns auto-checkpoints off and, after each commit, tells the Checkpointer
// how large the WAL is; past a threshold the Checkpointer copies it back on
// its own connection and thread, in PASSIVE mode, which never blocks the
// writer or the readers (sqlite.org/wal.html#ckpt, c3ref/wal_checkpoint_v2.html).
//
// Thread safety: wal_grew() may be called from any thread; the rest is the
// owner's.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "tally/sqlite.h"
#include "tally/result.h"

namespace tally::collector {

class Checkpointer {
 public:
  // Opens its own connection to an existing database in WAL mode.
  static Result<std::unique_ptr<Checkpointer>> open(const std::string& path, int threshold_pages);
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
  Checkpointer(sql::Database db, int threshold_pages);
  void checkpoint();

  sql::Database db_;
  int threshold_pages_;
  std::atomic<bool> pending_{false};
  bool failing_ = false;  // checkpoint thread only: log state changes once
  boost::asio::thread_pool thread_{1};
};

}  // namespace tally::collector
