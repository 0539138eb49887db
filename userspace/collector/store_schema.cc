#include "collector/store_schema.h"

#include <fmt/format.h>

#include "collector/chunk_migration.h"
#include "collector/names_digest.h"
#include "tally/log.h"

namespace tally::collector {

namespace {

// Indexes of samples: only those whose inserts append. Samples arrive in
// time order, so (host, ts_ns) and (ts_ns) grow at their right edge, and
// (agent, seq, idx) at the agent's; a batch dirties a few pages of each.
// A (host, pid, ts_ns) index would put each of a batch's ~1,000 processes on
// a different leaf page: measured, it cut ingestion from ~50k to ~13k
// samples/s once the table held a few hundred batches.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE agents (
  agent INTEGER PRIMARY KEY,
  agent_id TEXT NOT NULL UNIQUE,
  host TEXT NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  duplicates_rejected INTEGER NOT NULL DEFAULT 0,
  samples_stored INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE received (
  agent INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  PRIMARY KEY (agent, first_seq)
) WITHOUT ROWID;
CREATE TABLE batches (
  agent INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  batch_samples INTEGER NOT NULL,
  stored INTEGER NOT NULL,
  PRIMARY KEY (agent, seq)
) WITHOUT ROWID;
CREATE INDEX batches_incomplete ON batches (agent, seq) WHERE stored < batch_samples;
CREATE TABLE gaps (
  agent INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  reason TEXT NOT NULL,
  time_ns INTEGER NOT NULL,
  detail TEXT NOT NULL,
  PRIMARY KEY (agent, seq)
) WITHOUT ROWID;
CREATE TABLE samples (
  agent INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  host TEXT NOT NULL,
  ts_ns INTEGER NOT NULL,
  pid INTEGER,
  start_time_ns INTEGER,
  cpu_ns INTEGER,
  json TEXT NOT NULL,
  UNIQUE (agent, seq, idx)
);
CREATE INDEX samples_host_ts ON samples (host, ts_ns);
CREATE INDEX samples_ts ON samples (ts_ns);
)sql";

// Version 2 (protocol version 2): the names each agent sent for each of its
// live processes, so samples may leave them out. `names` is the members'
// JSON text, `"comm":…,"cmdline":…,"cgroup":…`, spliced back into samples
// that refer to it. A row goes when the process's exit is stored.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE process_names (
  agent INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  start_time_ns INTEGER NOT NULL,
  names TEXT NOT NULL,
  PRIMARY KEY (agent, pid, start_time_ns)
) WITHOUT ROWID;
)sql";

// Version 3: when each process's names were last recorded, so names an agent
// will never mention again (its process exited while the agent was down, or
// the exit was lost) are forgotten after a while instead of kept forever. A
// live process whose names were forgotten costs its agent one 409 and a
// resend in full (docs/protocol.md). Rows that predate the column count as
// recorded at the upgrade.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE process_names ADD COLUMN recorded_ns INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 4: who may write as an agent, and which agent continues which.
// `credential` is the name of the credential (docs/protocol.md,
// "Credentials") the agent first wrote with, or NULL: not bound yet (a
// database from before, or no token file); an unbound agent is bound by its
// next request. Host names (the envelope's and the samples', which queries
// filter on) are bound the same way; a host without a row is not bound. A
// succession row is written with the successor's gap record that names the
// predecessor (its `seq`); one successor per predecessor and one
// predecessor per successor.
//
// Also in version 4, names stored once. Until then every process sample's
// JSON held its comm, cmdline and cgroup, so a 1 MiB command line was stored
// again every interval. Now each distinct (agent, process, names) is one row of
// `names`, found again by its digest (names_digest.h); a sample refers to it
// by names_id and says where in its JSON the names go back (names_at). Rows
// from before keep their names in the JSON and a NULL names_id: rewriting
// the whole table would make the upgrade as long as the database is large.
// process_names now refers to the names instead of holding them.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE agents ADD COLUMN credential TEXT;
CREATE TABLE hosts (
  host TEXT PRIMARY KEY,
  credential TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE successions (
  successor INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  predecessor INTEGER NOT NULL UNIQUE,
  last_seq INTEGER NOT NULL
);
CREATE TABLE names (
  names_id INTEGER PRIMARY KEY,
  agent INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  start_time_ns INTEGER NOT NULL,
  digest INTEGER NOT NULL,
  names TEXT NOT NULL
);
CREATE INDEX names_process ON names (agent, pid, start_time_ns, digest);
ALTER TABLE samples ADD COLUMN names_id INTEGER;
ALTER TABLE samples ADD COLUMN names_at INTEGER;
INSERT INTO names (agent, pid, start_time_ns, digest, names)
  SELECT agent, pid, start_time_ns, names_digest(names), names FROM process_names;
CREATE TABLE process_names_v4 (
  agent INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  start_time_ns INTEGER NOT NULL,
  names_id INTEGER NOT NULL,
  recorded_ns INTEGER NOT NULL,
  PRIMARY KEY (agent, pid, start_time_ns)
) WITHOUT ROWID;
INSERT INTO process_names_v4 (agent, pid, start_time_ns, names_id, recorded_ns)
  SELECT p.agent, p.pid, p.start_time_ns, n.names_id, p.recorded_ns
  FROM process_names p JOIN names n
  ON n.agent = p.agent AND n.pid = p.pid AND n.start_time_ns = p.start_time_ns;
DROP TABLE process_names;
ALTER TABLE process_names_v4 RENAME TO process_names;
)sql";

// Version 5: samples as chunks (sample_chunk.h): a run of one batch's
// samples of one host is one row of integers, found by (agent, seq,
// first_idx) for deduplication and by its earliest time for queries. A
// window [from, to) reads the chunks whose min_ts_ns is in [from - the
// widest span, to): store_meta keeps that span (0 when every chunk is of
// one interval, as tallyd sends them). The samples table's rows are moved
// into chunks (chunk_migration.h) and the table dropped.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE chunks (
  chunk INTEGER PRIMARY KEY,
  agent INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  first_idx INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  host TEXT NOT NULL,
  min_ts_ns INTEGER NOT NULL,
  max_ts_ns INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE UNIQUE INDEX chunks_batch ON chunks (agent, seq, first_idx);
CREATE INDEX chunks_host_ts ON chunks (host, min_ts_ns);
CREATE INDEX chunks_ts ON chunks (min_ts_ns);
CREATE TABLE store_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Version 6: retention and rollups (housekeeper.h). Per (host, group,
// minute) and (host, group, hour), sums of the process samples
// (group_rollup.h), kept after the chunks they were made from are deleted.
// rollup_dirty lists the buckets whose chunks changed since they were last
// summed. Hosts (series_hosts) and groups (rollup_groups: a comm, cgroup
// or process incarnation, with when a rollup last used it) are stored
// once and referred to by number: a cgroup path is often 100 bytes, and
// a host has ~30 rollup rows a minute. A fleet-wide query reads each
// host's rows by the primary key. A names row's
// last_ts_ns is the latest sample time that refers to it (kept up to date
// within an hour, chunk_writer.cc), so that it is deleted after the last
// chunk that needs it. An agent's last_seen_ns and software are when its
// last request was stored and its User-Agent, for the fleet page.
constexpr const char* kSchemaV6 = R"sql(
ALTER TABLE names ADD COLUMN last_ts_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN last_seen_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN software TEXT NOT NULL DEFAULT '';
CREATE TABLE series_hosts (
  host_id INTEGER PRIMARY KEY,
  host TEXT NOT NULL UNIQUE
);
CREATE TABLE rollup_groups (
  group_id INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL,
  name TEXT NOT NULL,
  label TEXT NOT NULL,
  last_bucket_ns INTEGER NOT NULL,
  UNIQUE (kind, name)
);
CREATE INDEX rollup_groups_age ON rollup_groups (last_bucket_ns);
CREATE TABLE rollups (
  step_s INTEGER NOT NULL,
  host_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  bucket_ns INTEGER NOT NULL,
  other INTEGER NOT NULL,
  group_id INTEGER NOT NULL,
  cpu_ns INTEGER NOT NULL,
  rss_max INTEGER NOT NULL,
  rss_sum INTEGER NOT NULL,
  points INTEGER NOT NULL,
  processes INTEGER NOT NULL,
  PRIMARY KEY (step_s, host_id, kind, bucket_ns, other, group_id)
) WITHOUT ROWID;
CREATE TABLE rollup_dirty (
  step_s INTEGER NOT NULL,
  bucket_ns INTEGER NOT NULL,
  host TEXT NOT NULL,
  PRIMARY KEY (step_s, bucket_ns, host)
) WITHOUT ROWID;
)sql";

// The chunks of a database from before version 6, to be summed into
// rollups in the background like new ones.
constexpr const char* kMarkChunksDirty = R"sql(
INSERT OR IGNORE INTO rollup_dirty (step_s, bucket_ns, host)
  SELECT 60, min_ts_ns - min_ts_ns % 60000000000, host FROM chunks;
INSERT OR IGNORE INTO rollup_dirty (step_s, bucket_ns, host)
  SELECT 60, max_ts_ns - max_ts_ns % 60000000000, host FROM chunks;
INSERT OR IGNORE INTO rollup_dirty (step_s, bucket_ns, host)
  SELECT 3600, min_ts_ns - min_ts_ns % 3600000000000, host FROM chunks;
INSERT OR IGNORE INTO rollup_dirty (step_s, bucket_ns, host)
  SELECT 3600, max_ts_ns - max_ts_ns % 3600000000000, host FROM chunks;
)sql";

}  // namespace

Status prepare_writer(sql::Database& db, Durability durability, std::uint64_t max_page_count,
                      std::uint64_t now_ns) {
  // 4 KiB pages: a batch is a few rows now (a chunk, its index entries,
  // counters), and every page a commit touches is written whole to the WAL,
  // so smaller pages write less per batch. Files made before schema 5 keep
  // their 16 KiB (a page size takes effect only on a new file, before WAL
  // mode is set).
  TALLY_TRY_CTX(db.exec("PRAGMA page_size=4096"), "set page size");
  // WAL: readers (the query thread) never block the writer and vice versa,
  // and a commit is one append to the log (sqlite.org/wal.html).
  TALLY_TRY_CTX(db.exec("PRAGMA journal_mode=WAL"), "set WAL mode");
  // The collector acks only after COMMIT returns, and the agent then deletes
  // its copy. With FULL the WAL is fsynced at every commit, so an ack means
  // the batch survives power loss too; NORMAL would survive only a collector
  // crash (sqlite.org/pragma.html#pragma_synchronous). The fsync costs one
  // per request, amortized over the ~1,000 samples of a batch.
  TALLY_TRY_CTX(db.exec(durability == Durability::full ? "PRAGMA synchronous=FULL"
                                                       : "PRAGMA synchronous=NORMAL"),
                "set durability");
  TALLY_TRY_CTX(db.exec("PRAGMA busy_timeout=5000"), "set busy timeout");
  TALLY_TRY_CTX(db.exec("PRAGMA cache_size=-16384"), "set cache size");  // 16 MiB
  // The WAL file is reused from its start after a complete checkpoint; this
  // truncates it then if a burst made it larger.
  TALLY_TRY_CTX(db.exec("PRAGMA journal_size_limit=67108864"), "set WAL size limit");
  // Test seam: a page budget makes SQLite fail with "database or disk is
  // full" exactly as a full disk would (sqlite.org/pragma.html#pragma_max_page_count).
  if (max_page_count > 0) {
    TALLY_TRY_CTX(db.exec(fmt::format("PRAGMA max_page_count={}", max_page_count)),
                  "set page budget");
  }

  auto version = db.query_int("PRAGMA user_version");
  if (!version.ok()) return version.error().context("read schema version");
  if (*version == kSchemaVersion) return ok_status();
  if (*version > kSchemaVersion) {
    return Error::format("database {} has schema version {}, newer than this collector's {}",
                         db.path().string(), *version, kSchemaVersion);
  }
  // Version 0 is a new file, version 1 one that predates process names,
  // version 2 one that predates their age, version 3 one that predates
  // credentials and successions and stores names in every sample, version
  // 4 one that stores a row per sample, version 5 one without rollups. One transaction, so a crash
  // half-way leaves the old version and the next start does it again.
  const std::string what = *version == 0 ? std::string("create schema")
                                         : fmt::format("upgrade schema from version {}", *version);
  auto txn = sql::Transaction::begin(db);
  if (!txn.ok()) return txn.error().context(what);
  if (*version < 1) TALLY_TRY_CTX(db.exec(kSchemaV1), what);
  if (*version < 2) TALLY_TRY_CTX(db.exec(kSchemaV2), what);
  if (*version < 3) {
    TALLY_TRY_CTX(db.exec(kSchemaV3), what);
    TALLY_TRY_CTX(db.exec(fmt::format("UPDATE process_names SET recorded_ns = {}", now_ns)), what);
  }
  if (*version < 4) {
    TALLY_TRY_CTX(register_names_digest(db), what);
    TALLY_TRY_CTX(db.exec(kSchemaV4), what);
  }
  Result<ChunkMigration> moved = ChunkMigration{};
  if (*version < 5) TALLY_TRY_CTX(db.exec(kSchemaV5), what);
  TALLY_TRY_CTX(db.exec(kSchemaV6), what);
  TALLY_TRY_CTX(db.exec(fmt::format("UPDATE names SET last_ts_ns = {}", now_ns)), what);
  if (*version < 5) {
    moved = move_sample_rows_to_chunks(db);
    if (!moved.ok()) return moved.error().context(what);
    TALLY_TRY_CTX(db.exec("DROP TABLE samples"), what);
  }
  TALLY_TRY_CTX(db.exec(kMarkChunksDirty), what);
  TALLY_TRY_CTX(db.exec(fmt::format("PRAGMA user_version={}", kSchemaVersion)), what);
  TALLY_TRY_CTX(txn->commit(), what);
  if (moved->samples > 0) {
    log::info(
        "{}: moved {} samples into chunks ({} kept as their text); the file keeps its size and "
        "reuses the pages freed",
        db.path().string(), moved->samples, moved->kept_as_text);
  }
  return ok_status();
}

Status prepare_reader(sql::Database& db) {
  TALLY_TRY_CTX(db.exec("PRAGMA busy_timeout=5000"), "set busy timeout");
  auto version = db.query_int("PRAGMA user_version");
  if (!version.ok()) return version.error().context("read schema version");
  if (*version != kSchemaVersion) {
    return Error::format("database {} has schema version {}, expected {}", db.path().string(),
                         *version, kSchemaVersion);
  }
  return ok_status();
}

}  // namespace tally::collector
