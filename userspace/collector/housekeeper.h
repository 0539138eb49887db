// The collector's background work on its database, on the writer thread
// between batches: sums new chunks into rollups, and deletes what is older
// than its retention.
//
// Rollups: per (host, group, minute) and (host, group, hour), from the
// chunks (group_rollup.h), keeping the groups of each kind with the most
// CPU (10 per minute, 20 per hour) and the exact rest as `other`. A bucket is summed again, whole,
// each time a chunk of it arrives (the chunk writer marks it in rollup_dirty), so data that arrives
// late (an agent back from an hour offline) is in the rollups as soon as it is in the chunks. A
// bucket is summed once it is over (a minute's at most a minute after its chunks came). A bucket
// older than the raw window is not summed again: its chunks are being deleted, and it keeps the
// sums it has (counted as late).
//
// Retention: chunks whose samples are all older than `raw`, minute rollups
// older than `minute_rollups`, hour rollups older than `hour_rollups`;
// names rows no chunk or live process refers to any more; batch rows
// (which let a resent batch be found a duplicate) below the agent's
// oldest chunk. Gap records are kept: they are one row per outage, and
// /v1/agents derives `missing` from them for as long as the agent exists.
//
// Every step is one transaction of bounded work (a few ms): the writer
// thread runs batches between steps, so ingestion waits for at most one
// step. Deleted pages go to SQLite's freelist and are reused by new rows,
// so the file stops growing once retention deletes as much as comes in.
#pragma once

#include <cstdint>
#include <memory>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::collector {

struct Retention {
  static constexpr std::uint64_t kDayNs = 86400ull * 1'000'000'000;
  std::uint64_t raw_ns = 14 * kDayNs;
  // Minute rollups are ~30 rows per host and minute: at 400 days they
  // would take several times the bytes of 14 days of raw samples. Hour
  // rollups are 60 times fewer.
  std::uint64_t minute_rollups_ns = 35 * kDayNs;
  std::uint64_t hour_rollups_ns = 400 * kDayNs;
};

// Since the collector started.
struct HousekeepingCounts {
  std::uint64_t buckets_summed = 0;
  std::uint64_t late_buckets = 0;   // arrived older than the raw window: not summed
  std::uint64_t names_missing = 0;  // samples whose names row was gone: not summed
  std::uint64_t chunks_deleted = 0;
  std::uint64_t rollups_deleted = 0;
  std::uint64_t names_deleted = 0;
  std::uint64_t batches_deleted = 0;
};

class Housekeeper {
 public:
  static Result<std::unique_ptr<Housekeeper>> prepare(sql::Database& db, Retention retention);
  ~Housekeeper();

  // One transaction of bounded work; true when more is waiting.
  Result<bool> step(std::uint64_t now_ns);
  const HousekeepingCounts& counts() const;

 private:
  struct Impl;
  explicit Housekeeper(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
