// Opening an outbox: the file, the connection settings, the schema, the
// identity, the sinks and the in-memory totals.
#include <algorithm>
#include <set>

#include <sqlite3.h>

#include "agent_id.h"
#include "outbox_core.h"
#include "quarantine.h"
#include "schema.h"
#include "tally/log.h"

namespace tally::queue {
namespace {

Status validate(const OutboxOptions& options) {
  if (options.path.empty()) return Error("outbox path is empty");
  if (options.sinks.empty()) return Error("outbox needs at least one sink");
  std::set<std::string_view> seen;
  for (const std::string& sink : options.sinks) {
    if (sink.empty()) return Error("outbox sink name is empty");
    if (!seen.insert(sink).second) return Error::format("outbox sink \"{}\" listed twice", sink);
  }
  if (options.batch.max_samples == 0) return Error("outbox batch max_samples must be >= 1");
  if (options.batch.max_bytes == 0) return Error("outbox batch max_bytes must be >= 1");
  if (options.cap_bytes == 0) return Error("outbox cap_bytes must be >= 1");
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<OutboxCore>> OutboxCore::open(const OutboxOptions& options,
                                                     std::uint64_t now_ns) {
  const std::string what = fmt::format("open outbox {}", options.path.string());
  TALLY_TRY_CTX(validate(options), what);
  TALLY_TRY_CTX(ensure_outbox_directory(options.path), "open outbox");
  // Before anything reads or writes the database: a second writer would
  // interleave seqs under the same agent id, and even its open changes
  // the file (it retires the running writer's dictionary entries).
  auto lock = OutboxLock::acquire(options.path);
  if (!lock) return lock.error();

  std::unique_ptr<OutboxCore> core(new OutboxCore(options));
  core->lock_ = std::move(*lock);
  TALLY_TRY_CTX(core->attach(Attach::open, now_ns), what);
  return core;
}

Status OutboxCore::attach(Attach how, std::uint64_t now_ns, const Inherited* inherited) {
  auto attached = attach_steps(how, now_ns, inherited);
  // Never half-attached: every operation checks usable(), which needs both
  // the connection and its statements.
  if (!attached) detach();
  return attached;
}

Status OutboxCore::attach_steps(Attach how, std::uint64_t now_ns, const Inherited* inherited) {
  bool quarantined = false;
  if (how == Attach::recovered) {
    // The file is the copy this process just made of its own data.
    auto db = open_outbox_connection(options_.path, false);
    if (!db) return db.error();
    db_ = std::move(*db);
    exclusive_ = false;
  } else {
    auto opened = open_outbox_file(options_.path, kSchemaVersion, now_ns);
    if (!opened) return opened.error();
    db_ = std::move(opened->db);  // final address: statements will point here
    exclusive_ = opened->exclusive;
    quarantined = opened->quarantined;
  }
  TALLY_TRY(configure_connection());
  TALLY_TRY(migrate(db_, schema_migrations()));
  auto stmts = prepare_statements(db_);
  if (!stmts) return stmts.error();
  stmts_ = std::move(*stmts);
  db_.clear_last_error();
  if (auto init = initialise(quarantined, now_ns, how == Attach::recreated ? inherited : nullptr);
      !init) {
    // On a full disk an outbox that has its identity opens all the same, to
    // ship what it holds: what initialise writes (the last seq kept in meta,
    // sink changes) waits for the next open.
    if (how != Attach::open || !db_.last_error_was_disk_full() || !identity_stored()) {
      return init.error();
    }
    log::warning("outbox {}: {}; opening to ship what it holds", options_.path.string(),
                 init.error().message());
    after_failure();
  }
  TALLY_TRY(load_state());
  // Recovered: the same writer goes on, its entries are still in use.
  if (how != Attach::recovered) TALLY_TRY(retire_live_entries());
  quarantined_files_ = count_quarantined_files(options_.path);
  refresh_space(/*new_connection=*/true);
  stamps_ = stamp_outbox(options_.path);
  file_problem_.clear();
  if (how == Attach::open) TALLY_TRY(declare_lost_predecessor(now_ns));
  record_witness();
  return ok_status();
}

bool OutboxCore::identity_stored() {
  auto stored = db_.query_text("SELECT value FROM meta WHERE key = 'agent_id'");
  return stored && !stored->empty() && *stored == agent_id_;
}

Status OutboxCore::usable() const {
  if (db_.handle() != nullptr) return ok_status();
  return Error::format("outbox {} is unavailable: {}", options_.path.string(),
                       file_problem_.empty() ? "not open" : file_problem_);
}

Status OutboxCore::configure_connection() {
  // Page size stays at SQLite's 4 KiB default: larger pages cut the WAL
  // frames of an append (measured: no gain, the cost is per byte) but every
  // small transaction (ack, fail) writes whole pages to the WAL, so 16 KiB
  // pages made each ack write ~80 KiB.
  // WAL: a commit is one append to the -wal file plus one fsync, and readers
  // never block the writer (https://sqlite.org/wal.html).
  auto mode = db_.query_text("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error().context("configure");
  if (*mode != "wal") {
    return Error::format("configure {}: journal_mode is \"{}\", not wal", db_.path().string(),
                         *mode);
  }
  // FULL: in WAL mode the -wal file is fsynced at every commit, so a
  // committed append survives power loss; NORMAL would only survive a crash
  // of the process (https://sqlite.org/pragma.html#pragma_synchronous).
  TALLY_TRY_CTX(db_.exec("PRAGMA synchronous = FULL"), "configure");
  // The outbox checkpoints the WAL itself, at a size that fits the
  // filesystem, and only while the database file is still its own
  // (outbox_space.cc); the hook also turns SQLite's autocheckpoint off.
  sqlite3_wal_hook(db_.handle(), &OutboxCore::on_wal_commit, this);
  wal_frames_ = 0;
  // Debian builds SQLite with SECURE_DELETE, which zero-fills every page an
  // acked batch frees: 250 KB of extra WAL writes per ack. FAST still wipes
  // deleted cells inside b-tree pages that are written anyway, and adds no
  // I/O (https://sqlite.org/pragma.html#pragma_secure_delete).
  TALLY_TRY_CTX(db_.exec("PRAGMA secure_delete = FAST"), "configure");
  // Another process (a status CLI) may hold a read lock briefly.
  TALLY_TRY_CTX(db_.exec("PRAGMA busy_timeout = 5000"), "configure");
  // 2 MiB: an interval of 1,000 samples is ~100 KiB once compressed. A
  // bigger transaction spills pages to the WAL before its commit, which is
  // still atomic; a larger cache would only hold the agent's RSS up.
  TALLY_TRY_CTX(db_.exec("PRAGMA cache_size = -2048"), "configure");
  return ok_status();
}

Status OutboxCore::initialise(bool quarantined, std::uint64_t now_ns, const Inherited* inherited) {
  auto txn = sql::Transaction::begin(db_);
  if (!txn) return txn.error();
  if (inherited) {
    // A new file carries on the seq space of the lost one: same agent id,
    // seqs go on, counters keep counting, sinks keep what they acked.
    {
      auto set_id = stmts_.use(Q::meta_set);
      set_id->bind_text(1, "agent_id").bind_text(2, agent_id_);
      TALLY_TRY_CTX(set_id->run(), "store agent id");
    }
    for (std::size_t i = 0; i < kCounterCount; ++i) {
      if (inherited->counters[i] == 0) continue;
      auto set = stmts_.use(Q::meta_set);
      set->bind_text(1, counter_key(static_cast<Counter>(i))).bind(2, inherited->counters[i]);
      TALLY_TRY_CTX(set->run(), "store counters");
    }
  }
  {
    auto get = stmts_.use(Q::meta_get);
    get->bind_text(1, "agent_id");
    auto row = get->step();
    if (!row) return row.error();
    if (*row) agent_id_ = std::string(get->column_text(0));
  }
  if (agent_id_.empty()) {
    // Made in a transaction of its own after the schema: a crash before the
    // commit just means the next open makes another id nobody has seen yet.
    auto id = make_agent_id();
    if (!id) return id.error();
    auto set = stmts_.use(Q::meta_set);
    set->bind_text(1, "agent_id").bind_text(2, *id);
    TALLY_TRY_CTX(set->run(), "store agent id");
    agent_id_ = std::move(*id);
  }
  if (quarantined) {
    const std::uint64_t before =
        inherited ? inherited->counters[static_cast<std::size_t>(Counter::quarantine_events)] : 0;
    auto set = stmts_.use(Q::meta_set);
    set->bind_text(1, counter_key(Counter::quarantine_events)).bind(2, before + 1);
    TALLY_TRY_CTX(set->run(), "count quarantine");
  }
  TALLY_TRY(reconcile_sinks(now_ns));
  if (inherited) {
    for (const SinkState& sink : inherited->sinks) {
      if (sink.last_acked_seq == 0) continue;
      auto update =
          sql::Statement::prepare(db_, "UPDATE sinks SET last_acked_seq = ?2 WHERE name = ?1");
      if (!update) return update.error();
      update->bind_text(1, sink.name).bind(2, sink.last_acked_seq);
      TALLY_TRY_CTX(update->run(), "keep what the sinks acknowledged");
    }
  }
  return txn->commit();
}

Status OutboxCore::reconcile_sinks(std::uint64_t now_ns) {
  std::vector<std::pair<std::int64_t, std::string>> stored;
  {
    auto list = stmts_.use(Q::sink_list);
    for (;;) {
      auto row = list->step();
      if (!row) return row.error();
      if (!*row) break;
      stored.emplace_back(list->column_int(0), std::string(list->column_text(1)));
    }
  }
  for (const std::string& name : options_.sinks) {
    const bool known =
        std::any_of(stored.begin(), stored.end(), [&](const auto& s) { return s.second == name; });
    if (known) continue;
    // A new sink starts with the batches formed from now on: older batches
    // were formed for the sinks configured then.
    auto insert = stmts_.use(Q::sink_insert);
    insert->bind_text(1, name).bind(2, now_ns);
    TALLY_TRY_CTX(insert->run(), fmt::format("add sink {}", name));
  }
  for (const auto& [id, name] : stored) {
    if (std::find(options_.sinks.begin(), options_.sinks.end(), name) != options_.sinks.end()) {
      continue;
    }
    auto count = sql::Statement::prepare(db_, "SELECT count(*) FROM deliveries WHERE sink_id = ?1");
    if (!count) return count.error();
    count->bind(1, id);
    auto row = count->step();
    if (!row) return row.error();
    const std::int64_t dropped = count->column_int(0);
    const std::string what = fmt::format("drop sink {}", name);
    TALLY_TRY_CTX(db_.exec(fmt::format("DELETE FROM deliveries WHERE sink_id = {}", id)), what);
    TALLY_TRY_CTX(db_.exec(fmt::format("DELETE FROM sinks WHERE id = {}", id)), what);
    log::warning("outbox {}: sink \"{}\" is no longer configured; dropped its {} pending batches",
                 db_.path().string(), name, dropped);
  }
  // Batches nobody is waiting for any more (their last sink was dropped).
  // Their seqs must stay used, so the newest one goes to meta first.
  auto max_seq = db_.query_int("SELECT coalesce(max(seq), 0) FROM batches");
  if (!max_seq) return max_seq.error();
  auto stored_seq =
      db_.query_int("SELECT coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0)");
  if (!stored_seq) return stored_seq.error();
  if (*max_seq > *stored_seq) {
    auto set = stmts_.use(Q::meta_set);
    set->bind_text(1, counter_key(Counter::last_seq)).bind(2, *max_seq);
    TALLY_TRY_CTX(set->run(), "keep last seq");
  }
  return db_.exec("DELETE FROM batches WHERE seq NOT IN (SELECT seq FROM deliveries)");
}

Status OutboxCore::load_state() {
  State state;
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    auto get = stmts_.use(Q::meta_get);
    get->bind_text(1, counter_key(static_cast<Counter>(i)));
    auto row = get->step();
    if (!row) return row.error();
    if (*row) state.counters[i] = get->column_u64(0);
  }
  auto scalar = [&](const char* sql, std::uint64_t& out) -> Status {
    auto value = db_.query_int(sql);
    if (!value) return value.error();
    out = static_cast<std::uint64_t>(*value);
    return ok_status();
  };
  // The newest seq is either still in batches or was stored in meta when
  // the batch holding it was deleted.
  state.persisted_last_seq = state[Counter::last_seq];
  std::uint64_t max_seq = 0;
  TALLY_TRY(scalar("SELECT coalesce(max(seq), 0) FROM batches", max_seq));
  state[Counter::last_seq] = std::max(state[Counter::last_seq], max_seq);
  TALLY_TRY(scalar("SELECT count(*) FROM batches", state.batch_count));
  TALLY_TRY(scalar("SELECT coalesce(sum(bytes), 0) FROM batches", state.batch_bytes));
  TALLY_TRY(scalar("SELECT coalesce(sum(sample_count), 0) FROM batches", state.batch_samples));
  TALLY_TRY(scalar("SELECT coalesce(sum(length(entries)), 0) FROM dictionary", state.dict_bytes));
  TALLY_TRY(scalar("SELECT count(*) FROM staged", state.staged_rows));
  TALLY_TRY(scalar("SELECT coalesce(sum(sample_count), 0) FROM staged", state.staged_samples));
  TALLY_TRY(scalar("SELECT coalesce(sum(bytes), 0) FROM staged", state.staged_bytes));
  TALLY_TRY(scalar("SELECT coalesce(min(created_ns), 0) FROM staged", state.staged_oldest_ns));
  TALLY_TRY(scalar("SELECT count(*) FROM dead_letters", state.dead_count));
  TALLY_TRY(scalar("SELECT count(*) FROM dictionary WHERE live = 0 AND retired_seq IS NULL",
                   state.dict_unsettled));
  TALLY_TRY(
      scalar("SELECT count(*) FROM dictionary WHERE retired_seq IS NOT NULL", state.dict_settled));
  std::uint64_t next_key = 1;
  TALLY_TRY(scalar("SELECT coalesce(max(first_key + count), 1) FROM dictionary", next_key));
  // Never below a key this process handed out already (a recreated file
  // starts with an empty dictionary).
  first_unused_key_ = std::max(first_unused_key_, next_key);
  TALLY_TRY(scalar("SELECT coalesce(sum(bytes), 0) FROM dead_letters", state.dead_bytes));

  auto list = stmts_.use(Q::sink_list);
  std::vector<SinkState> stored;
  for (;;) {
    auto row = list->step();
    if (!row) return row.error();
    if (!*row) break;
    stored.push_back({list->column_int(0), std::string(list->column_text(1)), list->column_u64(2)});
  }
  for (const std::string& name : options_.sinks) {
    for (const SinkState& sink : stored) {
      if (sink.name == name) state.sinks.push_back(sink);
    }
  }
  state_ = std::move(state);
  return ok_status();
}

Status OutboxCore::persist_counters(const State& before, State& after) {
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    if (i == static_cast<std::size_t>(Counter::last_seq)) {
      // Only needed once a batch row that could hold the newest seq is gone.
      if (!after.deleted_batches || after.persisted_last_seq == after[Counter::last_seq]) continue;
      after.persisted_last_seq = after[Counter::last_seq];
    } else if (before.counters[i] == after.counters[i]) {
      continue;
    }
    auto set = stmts_.use(Q::meta_set);
    set->bind_text(1, counter_key(static_cast<Counter>(i))).bind(2, after.counters[i]);
    TALLY_TRY_CTX(set->run(), "store counters");
  }
  return ok_status();
}

}  // namespace tally::queue
