#include "schema.h"

namespace tally::queue {
namespace {

// Version 1.
//  meta        key/value: agent_id, last_seq and the persistent counters.
//              last_seq is written only when batches are deleted; at open
//              the last seq is max(meta.last_seq, max(batches.seq)), which
//              keeps the meta page out of the append path.
//  sinks       configured destinations; id is what deliveries refer to.
//  staged      appended samples not yet formed into a batch, one row per
//              append holding its records joined by '\n' (compact: one
//              b-tree entry per interval, not per sample).
//  batches     formed batches; payload last so reading the other columns
//              never touches its overflow pages.
//  deliveries  one row per (sink, batch) the sink is not done with; a batch
//              with no delivery rows left is deleted. Found by seq through
//              the primary key, one lookup per sink (there are few sinks).
//              (Version 4 drops the retry time and its index: retries
//              are paced by each sink's backoff, not by the outbox.)
//  dead_letters payloads (or pieces) a sink refused for good.
Status create_v1(sql::Database& db) {
  return db.exec(R"sql(
    CREATE TABLE meta(
      key   TEXT PRIMARY KEY NOT NULL,
      value NOT NULL) WITHOUT ROWID;
    CREATE TABLE sinks(
      id             INTEGER PRIMARY KEY,
      name           TEXT NOT NULL UNIQUE,
      last_acked_seq INTEGER NOT NULL DEFAULT 0,
      added_ns       INTEGER NOT NULL);
    CREATE TABLE staged(
      id           INTEGER PRIMARY KEY,
      created_ns   INTEGER NOT NULL,
      sample_count INTEGER NOT NULL,
      bytes        INTEGER NOT NULL,
      records      BLOB NOT NULL);
    CREATE TABLE batches(
      seq          INTEGER PRIMARY KEY,
      kind         INTEGER NOT NULL,
      created_ns   INTEGER NOT NULL,
      sample_count INTEGER NOT NULL,
      bytes        INTEGER NOT NULL,
      payload      BLOB NOT NULL);
    CREATE TABLE deliveries(
      sink_id         INTEGER NOT NULL,
      seq             INTEGER NOT NULL,
      attempts        INTEGER NOT NULL DEFAULT 0,
      next_attempt_ns INTEGER NOT NULL DEFAULT 0,
      last_error      TEXT NOT NULL DEFAULT '',
      PRIMARY KEY(sink_id, seq)) WITHOUT ROWID;
    CREATE INDEX deferred_deliveries ON deliveries(sink_id, next_attempt_ns)
      WHERE next_attempt_ns > 0;
    CREATE TABLE dead_letters(
      id           INTEGER PRIMARY KEY,
      sink         TEXT NOT NULL,
      seq          INTEGER NOT NULL,
      first_index  INTEGER NOT NULL,
      sample_count INTEGER NOT NULL,
      http_status  INTEGER NOT NULL,
      message      TEXT NOT NULL,
      time_ns      INTEGER NOT NULL,
      bytes        INTEGER NOT NULL,
      payload      BLOB NOT NULL);
  )sql");
}

// Version 2: batches.payload and staged.records may be compressed; `codec`
// says how (blob_codec.h: 0 none, 1 zstd). Rows of version 1 keep 0 and read
// as before. ADD COLUMN with a constant default rewrites no row
// (https://sqlite.org/lang_altertable.html#altertabaddcol).
Status add_codec_v2(sql::Database& db) {
  return db.exec(R"sql(
    ALTER TABLE staged ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE batches ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
  )sql");
}

// Version 3: entries the records of batches refer to by key (process names
// of compact records, userspace/samples/compact_records.h), written once
// and shared by every batch that refers to them. One row holds the entries
// one append added, keys first_key .. first_key + count - 1: one b-tree
// insert per append, not one per new process.
//  entries      each entry as a 4-byte little-endian length and its bytes
//  live         keys of the row not retired yet (no append after the one
//               that retired a key refers to it)
//  retired_seq  once live is 0: every record that refers to the row's keys
//               is in a batch <= this seq; NULL while some may still be
//               staged. The row is deleted once no batch <= retired_seq is
//               left.
Status add_dictionary_v3(sql::Database& db) {
  return db.exec(R"sql(
    CREATE TABLE dictionary(
      first_key   INTEGER PRIMARY KEY,
      count       INTEGER NOT NULL,
      entries     BLOB NOT NULL,
      live        INTEGER NOT NULL,
      retired_seq INTEGER);
    CREATE INDEX dictionary_retired ON dictionary(retired_seq) WHERE retired_seq IS NOT NULL;
    CREATE INDEX dictionary_unsettled ON dictionary(first_key)
      WHERE live = 0 AND retired_seq IS NULL;
  )sql");
}

// Version 4: the outbox no longer schedules retries (each sink's shipper
// backs off on its own), so deliveries lose next_attempt_ns and the partial
// index over it. DROP COLUMN rewrites the table, which holds one small row
// per pending batch and sink (https://sqlite.org/lang_altertable.html#altertabdropcol).
Status drop_retry_times_v4(sql::Database& db) {
  return db.exec(R"sql(
    DROP INDEX IF EXISTS deferred_deliveries;
    ALTER TABLE deliveries DROP COLUMN next_attempt_ns;
  )sql");
}

constexpr Migration kMigrations[] = {
    {0, &create_v1},
    {1, &add_codec_v2},
    {2, &add_dictionary_v3},
    {3, &drop_retry_times_v4},
};
static_assert(std::size(kMigrations) == kSchemaVersion);

}  // namespace

std::span<const Migration> schema_migrations() { return kMigrations; }

Status migrate(sql::Database& db, std::span<const Migration> migrations) {
  const int target = static_cast<int>(migrations.size());
  for (;;) {
    auto version = db.query_int("PRAGMA user_version");
    if (!version) return version.error().context("read schema version");
    if (*version == target) return ok_status();
    if (*version > target || *version < 0) {
      return Error::format("schema version {} of {} is newer than {}, the newest this code knows",
                           *version, db.path().string(), target);
    }
    const Migration& step = migrations[static_cast<std::size_t>(*version)];
    auto txn = sql::Transaction::begin(db);
    if (!txn) return txn.error();
    const std::string what = fmt::format("migrate {} from schema {} to {}", db.path().string(),
                                         step.from, step.from + 1);
    TALLY_TRY_CTX(step.apply(db), what);
    // user_version lives in the database header, so it commits atomically
    // with the step (https://sqlite.org/pragma.html#pragma_user_version).
    TALLY_TRY_CTX(db.exec(fmt::format("PRAGMA user_version = {}", step.from + 1)), what);
    TALLY_TRY_CTX(txn->commit(), what);
  }
}

}  // namespace tally::queue
