// Test helper: what a stopped tallyd left in its outbox file. Include only
// from tests that link tally_queue (it brings SQLite with it).
#pragma once

#include <sqlite3.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tally/queue/outbox.h"
#include "tally/time_util.h"

namespace tally::test {

// The sink names the file holds, read without changing anything.
inline std::vector<std::string> outbox_sink_names(const std::string& path) {
  std::vector<std::string> names;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT name FROM sinks ORDER BY id", -1, &stmt, nullptr) ==
        SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  EXPECT_FALSE(names.empty()) << "no sinks readable in " << path;
  return names;
}

// The payloads of the file's dead letters, oldest first.
inline std::vector<std::string> outbox_dead_letters(const std::string& path) {
  std::vector<std::string> payloads;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT payload FROM dead_letters ORDER BY id", -1, &stmt,
                           nullptr) == SQLITE_OK) {
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        payloads.emplace_back(static_cast<const char*>(sqlite3_column_blob(stmt, 0)),
                              static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return payloads;
}

// The outbox's stats, opened with the sinks the file already holds: opening
// with any other list would drop the missing sinks' pending batches first
// and make a "nothing pending" check pass on an outbox that was not empty.
inline queue::OutboxStats read_outbox_stats(const std::string& path) {
  queue::OutboxOptions options;
  options.path = path;
  options.sinks = outbox_sink_names(path);
  auto outbox = queue::Outbox::open(options, realtime_ns());
  EXPECT_TRUE(outbox.ok()) << (outbox.ok() ? "" : outbox.error().message());
  if (!outbox.ok()) return {};
  auto stats = (*outbox)->stats(realtime_ns());
  EXPECT_TRUE(stats.ok());
  return stats.ok() ? *stats : queue::OutboxStats{};
}

}  // namespace tally::test
