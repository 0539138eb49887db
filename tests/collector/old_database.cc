#include "old_database.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

namespace tally::test {

namespace {

// The schema of versions 1 to 3 as released (userspace/collector/store_schema.cc
// before version 4).
constexpr const char* kV1 = R"sql(
CREATE TABLE agents (agent INTEGER PRIMARY KEY, agent_id TEXT NOT NULL UNIQUE, host TEXT NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0, duplicates_rejected INTEGER NOT NULL DEFAULT 0,
  samples_stored INTEGER NOT NULL DEFAULT 0);
CREATE TABLE received (agent INTEGER NOT NULL, first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL, PRIMARY KEY (agent, first_seq)) WITHOUT ROWID;
CREATE TABLE batches (agent INTEGER NOT NULL, seq INTEGER NOT NULL,
  batch_samples INTEGER NOT NULL, stored INTEGER NOT NULL, PRIMARY KEY (agent, seq)) WITHOUT ROWID;
CREATE INDEX batches_incomplete ON batches (agent, seq) WHERE stored < batch_samples;
CREATE TABLE gaps (agent INTEGER NOT NULL, seq INTEGER NOT NULL, first_seq INTEGER NOT NULL,
  last_seq INTEGER NOT NULL, samples INTEGER NOT NULL, reason TEXT NOT NULL,
  time_ns INTEGER NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (agent, seq)) WITHOUT ROWID;
CREATE TABLE samples (agent INTEGER NOT NULL, seq INTEGER NOT NULL, idx INTEGER NOT NULL,
  host TEXT NOT NULL, ts_ns INTEGER NOT NULL, pid INTEGER, start_time_ns INTEGER,
  cpu_ns INTEGER, json TEXT NOT NULL, UNIQUE (agent, seq, idx));
CREATE INDEX samples_host_ts ON samples (host, ts_ns);
CREATE INDEX samples_ts ON samples (ts_ns);
)sql";
constexpr const char* kV2 = R"sql(
CREATE TABLE process_names (agent INTEGER NOT NULL, pid INTEGER NOT NULL,
  start_time_ns INTEGER NOT NULL, names TEXT NOT NULL,
  PRIMARY KEY (agent, pid, start_time_ns)) WITHOUT ROWID;
)sql";
constexpr const char* kV3 = R"sql(
ALTER TABLE process_names ADD COLUMN recorded_ns INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 4's tables as released, for a database written by a version 4
// collector from the start (the released upgrade also moved names; a new
// file has none to move).
constexpr const char* kV4 = R"sql(
ALTER TABLE agents ADD COLUMN credential TEXT;
CREATE TABLE hosts (host TEXT PRIMARY KEY, credential TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE successions (successor INTEGER PRIMARY KEY, seq INTEGER NOT NULL,
  predecessor INTEGER NOT NULL UNIQUE, last_seq INTEGER NOT NULL);
CREATE TABLE names (names_id INTEGER PRIMARY KEY, agent INTEGER NOT NULL, pid INTEGER NOT NULL,
  start_time_ns INTEGER NOT NULL, digest INTEGER NOT NULL, names TEXT NOT NULL);
CREATE INDEX names_process ON names (agent, pid, start_time_ns, digest);
ALTER TABLE samples ADD COLUMN names_id INTEGER;
ALTER TABLE samples ADD COLUMN names_at INTEGER;
DROP TABLE process_names;
CREATE TABLE process_names (agent INTEGER NOT NULL, pid INTEGER NOT NULL,
  start_time_ns INTEGER NOT NULL, names_id INTEGER NOT NULL, recorded_ns INTEGER NOT NULL,
  PRIMARY KEY (agent, pid, start_time_ns)) WITHOUT ROWID;
)sql";

class Db {
 public:
  explicit Db(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    exec("PRAGMA page_size=16384; PRAGMA journal_mode=WAL");
  }
  ~Db() { sqlite3_close(db_); }
  void exec(const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error != nullptr ? error : "") << " in " << sql;
    sqlite3_free(error);
  }
  // Runs `sql` with ?1, ?2, ... bound to the given values in order.
  void run(const std::string& sql, const std::vector<nlohmann::json>& values) {
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const int at = static_cast<int>(i + 1);
      const nlohmann::json& v = values[i];
      if (v.is_null()) {
        sqlite3_bind_null(stmt, at);
      } else if (v.is_string()) {
        const auto& text = v.get_ref<const std::string&>();
        sqlite3_bind_text(stmt, at, text.c_str(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
      } else {
        sqlite3_bind_int64(stmt, at, v.get<std::int64_t>());
      }
    }
    EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db_) << " in " << sql;
    sqlite3_finalize(stmt);
  }

 private:
  sqlite3* db_ = nullptr;
};

// The names members' text as the collectors of versions 2 and 3 kept it.
std::string names_text(const nlohmann::json& sample) {
  std::string text;
  for (const char* name : {"comm", "cmdline", "cgroup"}) {
    if (!text.empty()) text += ',';
    text += nlohmann::json(name).dump() + ":" + sample[name].dump();
  }
  return text;
}

// Version 4 stored a process's names once, in `names`, and each sample's
// JSON without them, saying where they went back (names_at). Odd process
// lines stand for samples sent without names (protocol version 2): the
// collector served those with the names at the end. The digest is 0, which
// no lookup by digest finds: a later body with the same names adds a row.
void write_version4_sample(Db& db, std::size_t i, const std::string& host, const std::string& line,
                           const nlohmann::json& sample, std::uint64_t recorded_ns) {
  if (sample["kind"] != "process") {
    db.run("INSERT INTO samples VALUES (1, 1, ?1, ?2, ?3, NULL, NULL, NULL, ?4, NULL, NULL)",
           {i, host, sample["ts_ns"], line});
    return;
  }
  const std::string names = names_text(sample);
  const auto at = line.find(",\"comm\":");
  std::string object = line;
  object.erase(at, names.size() + 1);
  std::size_t names_at = at;
  if (i % 2 == 1) names_at = object.size() - 1;
  db.run(
      "INSERT INTO names (names_id, agent, pid, start_time_ns, digest, names)"
      " VALUES (?1, 1, ?2, ?3, 0, ?4)",
      {i + 1, sample["pid"], sample["start_time_ns"], names});
  db.run("INSERT INTO samples VALUES (1, 1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
         {i, host, sample["ts_ns"], sample["pid"], sample["start_time_ns"], sample["cpu_ns"],
          object, i + 1, names_at});
  db.run("INSERT INTO process_names VALUES (1, ?1, ?2, ?3, ?4)",
         {sample["pid"], sample["start_time_ns"], i + 1, recorded_ns});
}

}  // namespace

void write_old_database(const std::string& path, int version, const std::string& agent_id,
                        const std::string& host, const std::vector<std::string>& lines,
                        std::uint64_t recorded_ns) {
  Db db(path);
  db.exec("BEGIN");
  db.exec(kV1);
  if (version >= 2) db.exec(kV2);
  if (version >= 3) db.exec(kV3);
  if (version >= 4) db.exec(kV4);
  db.run(
      "INSERT INTO agents (agent, agent_id, host, last_seq, samples_stored)"
      " VALUES (1, ?1, ?2, 1, ?3)",
      {agent_id, host, lines.size()});
  db.run("INSERT INTO received VALUES (1, 1, 1)", {});
  db.run("INSERT INTO batches VALUES (1, 1, ?1, ?1)", {lines.size()});
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto sample = nlohmann::json::parse(lines[i]);
    const bool process = sample["kind"] == "process";
    if (version >= 4) {
      write_version4_sample(db, i, host, lines[i], sample, recorded_ns);
      continue;
    }
    db.run("INSERT INTO samples VALUES (1, 1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
           {i, host, sample["ts_ns"], process ? sample["pid"] : nlohmann::json(),
            process ? sample["start_time_ns"] : nlohmann::json(),
            process ? sample["cpu_ns"] : nlohmann::json(), lines[i]});
    if (!process || version < 2) continue;
    if (version == 2) {
      db.run("INSERT INTO process_names VALUES (1, ?1, ?2, ?3)",
             {sample["pid"], sample["start_time_ns"], names_text(sample)});
    } else {
      db.run("INSERT INTO process_names VALUES (1, ?1, ?2, ?3, ?4)",
             {sample["pid"], sample["start_time_ns"], names_text(sample), recorded_ns});
    }
  }
  db.exec("PRAGMA user_version=" + std::to_string(version));
  db.exec("COMMIT");
}

}  // namespace tally::test
