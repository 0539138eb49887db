#include "collector/housekeeper.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "collector/chunk_writer.h"
#include "collector/group_rollup.h"
#include "collector/host_points.h"

namespace tally::collector {

namespace {

enum class Stmt : std::size_t {
  dirty_next,
  dirty_delete,
  rollup_clear,
  rollup_insert,
  host_add,
  host_find,
  group_find,
  group_add,
  group_touch,
  chunks_expire,
  rollups_expire,
  series_hosts,
  groups_expire,
  names_expire,
  names_last,
  agent_after,
  batches_expire,
  count_,
};

constexpr sql::StatementSql<Stmt> kSql[] = {
    // A bucket once it is over (?1 a minute ago, ?2 an hour ago), so that
    // an agent with a short interval does not have its minute summed again
    // at every batch. Oldest first, so a backlog is summed in time order.
    {Stmt::dirty_next,
     "SELECT step_s, bucket_ns, host FROM rollup_dirty"
     " WHERE (step_s = 60 AND bucket_ns <= ?1) OR (step_s = 3600 AND bucket_ns <= ?2)"
     " ORDER BY step_s, bucket_ns LIMIT ?3"},
    {Stmt::dirty_delete,
     "DELETE FROM rollup_dirty WHERE step_s = ?1 AND bucket_ns = ?2 AND host = ?3"},
    {Stmt::rollup_clear,
     "DELETE FROM rollups WHERE step_s = ?1 AND host_id = ?2 AND kind = ?3 AND bucket_ns = ?4"},
    {Stmt::rollup_insert,
     "INSERT INTO rollups (step_s, host_id, kind, bucket_ns, other, group_id, cpu_ns, rss_max,"
     " rss_sum, points, processes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    {Stmt::host_add, "INSERT INTO series_hosts (host) VALUES (?1) ON CONFLICT (host) DO NOTHING"},
    {Stmt::host_find, "SELECT host_id FROM series_hosts WHERE host = ?1"},
    {Stmt::group_find,
     "SELECT group_id, last_bucket_ns FROM rollup_groups WHERE kind = ?1 AND name = ?2"},
    {Stmt::group_add,
     "INSERT INTO rollup_groups (kind, name, label, last_bucket_ns) VALUES (?1, ?2, ?3, ?4)"},
    {Stmt::group_touch,
     "UPDATE rollup_groups SET last_bucket_ns = max(last_bucket_ns, ?2) WHERE group_id = ?1"},
    // A chunk goes once all of its samples are old (chunks_ts finds them).
    {Stmt::chunks_expire,
     "DELETE FROM chunks WHERE chunk IN (SELECT chunk FROM chunks WHERE min_ts_ns < ?1"
     " AND max_ts_ns < ?1 ORDER BY min_ts_ns LIMIT ?2)"},
    // By the primary key, host by host and kind by kind: an index by age
    // would repeat the whole key of every row (a WITHOUT ROWID table).
    {Stmt::rollups_expire,
     "DELETE FROM rollups WHERE (step_s, host_id, kind, bucket_ns, other, group_id) IN"
     " (SELECT step_s, host_id, kind, bucket_ns, other, group_id FROM rollups"
     " WHERE step_s = ?1 AND host_id = ?2 AND kind = ?3 AND bucket_ns < ?4 LIMIT ?5)"},
    {Stmt::series_hosts, "SELECT host_id FROM series_hosts"},
    {Stmt::groups_expire,
     "DELETE FROM rollup_groups WHERE group_id IN (SELECT group_id FROM rollup_groups"
     " WHERE last_bucket_ns < ?1 ORDER BY last_bucket_ns LIMIT ?2)"},
    // Not the current names of a live process: later samples may refer to
    // them without sending them (protocol version 2).
    // A window of ids per step, swept in turn: an index by last_ts_ns
    // would cost ~0.3 bytes per stored sample.
    {Stmt::names_expire,
     "DELETE FROM names WHERE names_id IN (SELECT n.names_id FROM names n"
     " WHERE n.names_id >= ?2 AND n.names_id < ?3 AND n.last_ts_ns < ?1"
     " AND NOT EXISTS (SELECT 1 FROM process_names p"
     " WHERE p.agent = n.agent AND p.pid = n.pid AND p.start_time_ns = n.start_time_ns"
     " AND p.names_id = n.names_id))"},
    {Stmt::names_last, "SELECT coalesce(max(names_id), 0) FROM names"},
    {Stmt::agent_after, "SELECT agent FROM agents WHERE agent > ?1 ORDER BY agent LIMIT 1"},
    // Complete batches below the agent's oldest chunk (or, with no chunk
    // left, all up to its last seq). Partial ones stay for /v1/agents.
    {Stmt::batches_expire,
     "DELETE FROM batches WHERE agent = ?1 AND seq IN (SELECT seq FROM batches"
     " WHERE agent = ?1 AND stored >= batch_samples AND seq < coalesce("
     "(SELECT min(seq) FROM chunks WHERE agent = ?1),"
     " (SELECT last_seq + 1 FROM agents WHERE agent = ?1)) ORDER BY seq LIMIT ?2)"},
};
static_assert(sql::lists_every_id_in_order(kSql), "kSql must list every Stmt once, in enum order");

// Groups of each kind kept by name per host and bucket (group_rollup.h):
// fewer per minute, whose rows outnumber the hours' sixty to one.
constexpr std::size_t kKeepPerMinute = 10;
constexpr std::size_t kKeepProcessesPerMinute = 5;
constexpr std::size_t kKeepPerHour = 20;
// Bounds of one step. A minute bucket of a 1,000-process host is one chunk
// of 1,000 samples, an hour bucket 60 of them (~30 ms, measured: the
// longest step); deletes are of rows of a few hundred bytes (chunks ~10
// KiB).
constexpr std::int64_t kBucketsPerStep = 16;
constexpr std::uint64_t kSamplesPerStep = 30'000;
constexpr std::int64_t kChunksPerStep = 64;
constexpr std::int64_t kRowsPerStep = 2000;
// Group ids kept in memory, beyond which they are read again.
constexpr std::size_t kGroupIdsKept = 1 << 18;
// How stale a group's last_bucket_ns may be; groups are kept this much
// longer than the rollups that refer to them.
constexpr std::uint64_t kGroupTouchNs = 86400ull * 1'000'000'000;

std::uint64_t before(std::uint64_t now_ns, std::uint64_t age_ns) {
  return now_ns - std::min(now_ns, age_ns);
}

struct Dirty {
  std::int64_t step_s = 0;
  std::uint64_t bucket_ns = 0;
  std::string host;
};

}  // namespace

struct Housekeeper::Impl {
  sql::Database& db;
  sql::StatementTable<Stmt> stmts;
  Retention retention;
  HousekeepingCounts counts;
  std::int64_t agent_cursor = 0;  // batches are expired one agent per step
  HostPoints points;              // the chunks of a bucket, names resolved
  // Ids of hosts and groups, and the last bucket written for each group;
  // dropped when a step fails (its inserts are rolled back) or groups are
  // deleted.
  std::unordered_map<std::string, std::int64_t> host_ids;
  struct GroupId {
    std::int64_t id;
    std::uint64_t last_bucket_ns;
  };
  std::unordered_map<std::string, GroupId> group_ids;  // kind digit, then name

  sql::Statement::Use use(Stmt s) { return stmts.use(s); }
  Result<std::uint64_t> sum_bucket(const Dirty& d);
  Result<std::int64_t> host_id(const std::string& host);
  Result<std::int64_t> group_id(const RollupRow& r);
  Result<bool> expire(Stmt s, std::uint64_t& counter, auto bind);
  Result<bool> expire_batches();
  Result<bool> expire_rollups(std::uint64_t now_ns);
  Result<bool> step(std::uint64_t now_ns);
  Status expire_names(std::uint64_t cut_ns);
  std::int64_t names_cursor = 0;  // the next window of names ids to sweep
};

Result<std::unique_ptr<Housekeeper>> Housekeeper::prepare(sql::Database& db, Retention r) {
  auto stmts = sql::StatementTable<Stmt>::prepare(db, kSql);
  if (!stmts.ok()) return stmts.error().context("prepare housekeeping statements");
  auto points = HostPoints::prepare(db);
  if (!points.ok()) return points.error().context("prepare housekeeping statements");
  return std::unique_ptr<Housekeeper>(new Housekeeper(std::make_unique<Impl>(
      Impl{db, std::move(stmts).value(), r, {}, 0, std::move(points).value(), {}, {}})));
}

Housekeeper::Housekeeper(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Housekeeper::~Housekeeper() = default;

const HousekeepingCounts& Housekeeper::counts() const { return impl_->counts; }

// Sums one bucket of one host from its chunks and replaces its rollup rows;
// returns the samples read.
Result<std::uint64_t> Housekeeper::Impl::sum_bucket(const Dirty& d) {
  const std::uint64_t width = static_cast<std::uint64_t>(d.step_s) * 1'000'000'000;
  const std::uint64_t end = d.bucket_ns + width;
  GroupRollup rollup(width, d.step_s == 60 ? kKeepPerMinute : kKeepPerHour,
                     d.step_s == 60 ? kKeepProcessesPerMinute : kKeepPerHour);
  auto read = points.read(
      d.host, d.bucket_ns, end, [] { return false; },
      [&](const ProcessPoint& p) { rollup.add(d.host, p); });
  if (!read.ok()) return read.error();
  counts.names_missing += read->names_missing;
  auto host = host_id(d.host);
  if (!host.ok()) return host.error();
  for (int kind = 0; kind < kGroupKinds; ++kind) {
    auto clear = use(Stmt::rollup_clear);
    clear->bind(1, d.step_s).bind(2, *host).bind(3, kind).bind(4, d.bucket_ns);
    TALLY_TRY(clear->run());
  }
  for (const RollupRow& r : rollup.take_rows()) {
    auto group = group_id(r);
    if (!group.ok()) return group.error();
    auto insert = use(Stmt::rollup_insert);
    insert->bind(1, d.step_s).bind(2, *host).bind(3, static_cast<int>(r.kind));
    insert->bind(4, r.bucket_ns).bind(5, r.other ? 1 : 0).bind(6, *group).bind(7, r.cpu_ns);
    insert->bind(8, r.rss_max).bind(9, r.rss_sum).bind(10, r.points).bind(11, r.processes);
    TALLY_TRY(insert->run());
  }
  ++counts.buckets_summed;
  return read->samples;
}

Result<std::int64_t> Housekeeper::Impl::host_id(const std::string& host) {
  if (auto it = host_ids.find(host); it != host_ids.end()) return it->second;
  {
    auto add = use(Stmt::host_add);
    add->bind(1, host);
    TALLY_TRY(add->run());
  }
  auto find = use(Stmt::host_find);
  find->bind(1, host);
  auto row = find->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::format("host {} was not added", host);
  const std::int64_t id = find->column_int(0);
  host_ids.emplace(host, id);
  return id;
}

// 0 for a host's total and for `other`; a group's last_bucket_ns is
// written again at most once a day.
Result<std::int64_t> Housekeeper::Impl::group_id(const RollupRow& r) {
  if (r.kind == GroupKind::host || r.other) return 0;
  const int kind = static_cast<int>(r.kind);
  std::string key = std::to_string(kind) + r.group;
  auto it = group_ids.find(key);
  if (it == group_ids.end()) {
    auto find = use(Stmt::group_find);
    find->bind(1, kind).bind(2, r.group);
    auto row = find->step();
    if (!row.ok()) return row.error();
    GroupId g{0, 0};
    if (*row) {
      g = GroupId{find->column_int(0), find->column_u64(1)};
    } else {
      auto add = use(Stmt::group_add);
      add->bind(1, kind).bind(2, r.group).bind(3, r.label).bind(4, r.bucket_ns);
      TALLY_TRY(add->run());
      g = GroupId{db.last_insert_rowid(), r.bucket_ns};
    }
    if (group_ids.size() > kGroupIdsKept) group_ids.clear();
    it = group_ids.emplace(std::move(key), g).first;
  }
  GroupId& g = it->second;
  if (r.bucket_ns > g.last_bucket_ns + kGroupTouchNs) {
    auto touch = use(Stmt::group_touch);
    touch->bind(1, g.id).bind(2, r.bucket_ns);
    TALLY_TRY(touch->run());
    g.last_bucket_ns = r.bucket_ns;
  }
  return g.id;
}

Result<bool> Housekeeper::Impl::expire(Stmt s, std::uint64_t& counter, auto bind) {
  auto q = use(s);
  const std::int64_t limit = bind(*q);
  TALLY_TRY(q->run());
  const auto deleted = static_cast<std::uint64_t>(q->changes());
  counter += deleted;
  return deleted >= static_cast<std::uint64_t>(limit);
}

Result<bool> Housekeeper::Impl::expire_rollups(std::uint64_t now_ns) {
  std::vector<std::int64_t> hosts;
  {
    auto q = use(Stmt::series_hosts);
    for (;;) {
      auto row = q->step();
      if (!row.ok()) return row.error();
      if (!*row) break;
      hosts.push_back(q->column_int(0));
    }
  }
  std::int64_t budget = kRowsPerStep;
  for (auto [step_s, age] :
       {std::pair{60, retention.minute_rollups_ns}, {3600, retention.hour_rollups_ns}}) {
    for (std::int64_t host : hosts) {
      for (int kind = 0; kind < kGroupKinds; ++kind) {
        if (budget <= 0) return true;
        auto q = use(Stmt::rollups_expire);
        q->bind(1, step_s).bind(2, host).bind(3, kind).bind(4, before(now_ns, age));
        q->bind(5, budget);
        TALLY_TRY(q->run());
        const auto deleted = q->changes();
        counts.rollups_deleted += static_cast<std::uint64_t>(deleted);
        budget -= deleted;
      }
    }
  }
  // Groups no rollup has used since before the longest retention.
  auto groups = use(Stmt::groups_expire);
  const std::uint64_t longest = std::max(retention.minute_rollups_ns, retention.hour_rollups_ns);
  groups->bind(1, before(before(now_ns, longest), 2 * kGroupTouchNs)).bind(2, kRowsPerStep);
  TALLY_TRY(groups->run());
  if (groups->changes() > 0) group_ids.clear();
  return budget <= 0 || groups->changes() >= kRowsPerStep;
}

Status Housekeeper::Impl::expire_names(std::uint64_t cut_ns) {
  std::int64_t last = 0;
  {
    auto q = use(Stmt::names_last);
    auto row = q->step();
    if (!row.ok()) return row.error();
    if (*row) last = q->column_int(0);
  }
  if (names_cursor > last) names_cursor = 0;
  auto q = use(Stmt::names_expire);
  q->bind(1, cut_ns).bind(2, names_cursor).bind(3, names_cursor + kRowsPerStep);
  TALLY_TRY(q->run());
  counts.names_deleted += static_cast<std::uint64_t>(q->changes());
  names_cursor += kRowsPerStep;
  return ok_status();
}

Result<bool> Housekeeper::Impl::expire_batches() {
  std::int64_t agent = 0;
  // The agent after the cursor, or the first one when the round is done.
  for (int round = 0; agent == 0 && round < 2; ++round) {
    auto next = use(Stmt::agent_after);
    next->bind(1, agent_cursor);
    auto row = next->step();
    if (!row.ok()) return row.error();
    if (*row) {
      agent = next->column_int(0);
    } else {
      agent_cursor = 0;
    }
  }
  if (agent == 0) return false;
  auto q = use(Stmt::batches_expire);
  q->bind(1, agent).bind(2, kRowsPerStep);
  TALLY_TRY(q->run());
  const auto deleted = static_cast<std::uint64_t>(q->changes());
  counts.batches_deleted += deleted;
  // Stay on this agent while it has more to delete.
  if (deleted < static_cast<std::uint64_t>(kRowsPerStep)) {
    agent_cursor = agent;
    return false;
  }
  return true;
}

Result<bool> Housekeeper::step(std::uint64_t now_ns) {
  auto stepped = impl_->step(now_ns);
  if (!stepped.ok()) {
    // Rolled back: ids it added are gone.
    impl_->host_ids.clear();
    impl_->group_ids.clear();
  }
  return stepped;
}

Result<bool> Housekeeper::Impl::step(std::uint64_t now_ns) {
  Impl& m = *this;
  const Retention& r = m.retention;
  const std::uint64_t raw_cut = before(now_ns, r.raw_ns);
  auto txn = sql::Transaction::begin(m.db);
  if (!txn.ok()) return txn.error().context("housekeeping");
  bool more = false;

  std::vector<Dirty> due;
  {
    auto q = m.use(Stmt::dirty_next);
    q->bind(1, before(now_ns, 60ull * 1'000'000'000));
    q->bind(2, before(now_ns, 3600ull * 1'000'000'000)).bind(3, kBucketsPerStep);
    for (;;) {
      auto row = q->step();
      if (!row.ok()) return row.error().context("housekeeping: find rollups due");
      if (!*row) break;
      due.push_back(Dirty{q->column_int(0), q->column_u64(1), std::string(q->column_text(2))});
    }
  }
  more = due.size() == static_cast<std::size_t>(kBucketsPerStep);
  std::uint64_t read = 0;
  for (const Dirty& d : due) {
    if (read >= kSamplesPerStep) {
      more = true;
      break;
    }
    const std::string what = fmt::format("housekeeping: sum {}-second bucket {} of host {}",
                                         d.step_s, d.bucket_ns, d.host);
    if (d.bucket_ns < raw_cut) {
      ++m.counts.late_buckets;
    } else {
      auto summed = m.sum_bucket(d);
      if (!summed.ok()) return summed.error().context(what);
      read += *summed;
    }
    auto done = m.use(Stmt::dirty_delete);
    done->bind(1, d.step_s).bind(2, d.bucket_ns).bind(3, d.host);
    TALLY_TRY_CTX(done->run(), what);
  }

  auto chunks = m.expire(Stmt::chunks_expire, m.counts.chunks_deleted, [&](sql::Statement& q) {
    q.bind(1, raw_cut).bind(2, kChunksPerStep);
    return kChunksPerStep;
  });
  if (!chunks.ok()) return chunks.error().context("housekeeping: delete old chunks");
  more |= *chunks;
  auto rollups = m.expire_rollups(now_ns);
  if (!rollups.ok()) return rollups.error().context("housekeeping: delete old rollups");
  more |= *rollups;
  // Names rows stay two touch periods longer than raw samples: a row's
  // last_ts_ns may be up to one behind (chunk_writer.h).
  auto unused = m.expire_names(before(raw_cut, 2 * ChunkWriter::kNamesTouchNs));
  if (!unused.ok()) return unused.error().context("housekeeping: delete unused names");
  auto batches = m.expire_batches();
  if (!batches.ok()) return batches.error().context("housekeeping: delete old batch rows");
  more |= *batches;
  TALLY_TRY_CTX(txn->commit(), "housekeeping");
  return more;
}

}  // namespace tally::collector
