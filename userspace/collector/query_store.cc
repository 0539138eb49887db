#include "query_store.h"

#include <array>

#include <fmt/format.h>

#include "tally/sqlite.h"
#include "store_schema.h"

namespace tally::collector {

namespace {

enum Stmt {
  kAgents,
  kReceived,
  kGaps,
  kPartial,
  kSamplesAll,
  kSamplesHost,
  kSamplesPid,
  kSamplesHostPid,
  kTopAll,
  kTopHost,
  kCheck,
  kStmtCount
};

// One statement per combination of filters rather than "(?1 IS NULL OR
// host = ?1)": SQLite picks an index at prepare time, and only a plain
// equality lets it use the (host, ts_ns) index. A pid is filtered within
// the host's window: a (host, pid, ts_ns) index would take one leaf page
// per process per batch to maintain (see store_schema.cc).
#define TALLY_SAMPLES_SQL(where)          \
  "SELECT json FROM samples WHERE " where \
  " ts_ns >= ?3 AND ts_ns < ?4"           \
  " ORDER BY ts_ns, rowid LIMIT ?5"
// Bare columns with a single max() come from the row holding the maximum
// (sqlite.org/lang_select.html#bareagg): comm and cmdline of the latest sample.
#define TALLY_TOP_SQL(where)                                                       \
  "SELECT host, pid, start_time_ns, sum(cpu_ns) AS cpu, max(ts_ns),"               \
  " json_extract(json, '$.comm'), json_extract(json, '$.cmdline')"                 \
  " FROM samples WHERE " where                                                     \
  " pid IS NOT NULL AND ts_ns >= ?2 AND ts_ns < ?3"                                \
  " GROUP BY host, pid, start_time_ns ORDER BY cpu DESC, host, pid, start_time_ns" \
  " LIMIT ?4"

constexpr std::array<const char*, kStmtCount> kSql = {
    "SELECT agent, agent_id, host, last_seq, duplicates_rejected, samples_stored"
    " FROM agents ORDER BY agent_id",
    "SELECT first_seq, last_seq FROM received WHERE agent = ?1 ORDER BY first_seq",
    "SELECT seq, first_seq, last_seq, samples, reason, time_ns, detail FROM gaps"
    " WHERE agent = ?1 ORDER BY seq",
    "SELECT seq, batch_samples, stored FROM batches WHERE agent = ?1"
    " AND stored < batch_samples ORDER BY seq",
    TALLY_SAMPLES_SQL(""),
    TALLY_SAMPLES_SQL("host = ?1 AND"),
    TALLY_SAMPLES_SQL("pid = ?2 AND"),
    TALLY_SAMPLES_SQL("host = ?1 AND pid = ?2 AND"),
    TALLY_TOP_SQL(""),
    TALLY_TOP_SQL("host = ?1 AND"),
    "SELECT count(*) FROM agents",
};

#undef TALLY_SAMPLES_SQL
#undef TALLY_TOP_SQL

}  // namespace

struct QueryStore::Impl {
  sql::Database db;
  std::array<sql::Statement, kStmtCount> stmts;

  sql::Statement::Use use(Stmt s) { return stmts[s].use(); }
  Status fill_agent(std::int64_t agent, AgentReport& report);
};

Result<std::unique_ptr<QueryStore>> QueryStore::open(const std::string& path) {
  auto db = sql::Database::open(path, sql::Database::Mode::read_only);
  if (!db.ok()) return db.error();
  auto impl = std::make_unique<Impl>(Impl{std::move(db).value(), {}});
  TALLY_TRY_CTX(prepare_reader(impl->db), fmt::format("open collector database {}", path));
  TALLY_TRY_CTX(sql::prepare_all(impl->db, kSql, impl->stmts), "prepare statements");
  return std::unique_ptr<QueryStore>(new QueryStore(std::move(impl)));
}

QueryStore::QueryStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QueryStore::~QueryStore() = default;

Status QueryStore::Impl::fill_agent(std::int64_t agent, AgentReport& report) {
  using Row = sql::Statement;
  std::vector<SeqRange> covered;
  {
    auto q = use(kReceived);
    q->bind(1, agent);
    TALLY_TRY_CTX(q->each_row([&](Row& r) {
      covered.push_back({r.column_u64(0), r.column_u64(1)});
    }),
                  "read received seqs");
  }
  {
    auto q = use(kGaps);
    q->bind(1, agent);
    TALLY_TRY_CTX(q->each_row([&](Row& r) {
      DeclaredLost d;
      d.seq = r.column_u64(0);
      d.gap.first_seq = r.column_u64(1);
      d.gap.last_seq = r.column_u64(2);
      d.gap.samples = r.column_u64(3);
      d.gap.reason = r.column_text(4);
      d.gap.time_ns = r.column_u64(5);
      d.gap.detail = r.column_text(6);
      if (d.gap.first_seq > 0) covered.push_back({d.gap.first_seq, d.gap.last_seq});
      report.declared_lost.push_back(std::move(d));
    }),
                  "read gap records");
  }
  {
    auto q = use(kPartial);
    q->bind(1, agent);
    TALLY_TRY_CTX(q->each_row([&](Row& r) {
      report.partial.push_back({r.column_u64(0), r.column_u64(1), r.column_u64(2)});
    }),
                  "read incomplete batches");
  }
  report.missing = uncovered_ranges(report.last_seq, std::move(covered));
  return ok_status();
}

Result<std::vector<AgentReport>> QueryStore::agents() {
  auto txn = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!txn.ok()) return txn.error().context("list agents");
  std::vector<std::pair<std::int64_t, AgentReport>> found;
  {
    auto q = impl_->use(kAgents);
    TALLY_TRY_CTX(q->each_row([&](sql::Statement& row) {
      AgentReport r;
      r.agent_id = row.column_text(1);
      r.host = row.column_text(2);
      r.last_seq = row.column_u64(3);
      r.duplicates_rejected = row.column_u64(4);
      r.samples_stored = row.column_u64(5);
      found.emplace_back(row.column_int(0), std::move(r));
    }),
                  "list agents");
  }
  std::vector<AgentReport> reports;
  reports.reserve(found.size());
  for (auto& [agent, report] : found) {
    TALLY_TRY_CTX(impl_->fill_agent(agent, report),
                  fmt::format("report agent {}", report.agent_id));
    reports.push_back(std::move(report));
  }
  return reports;
}

Result<SampleRows> QueryStore::samples(const SampleQuery& q) {
  Stmt which =
      q.host ? (q.pid ? kSamplesHostPid : kSamplesHost) : (q.pid ? kSamplesPid : kSamplesAll);
  auto use = impl_->use(which);
  if (q.host) use->bind(1, *q.host);
  if (q.pid) use->bind(2, static_cast<std::int64_t>(*q.pid));
  // One row more than asked for tells whether the answer is truncated.
  use->bind(3, q.from).bind(4, q.to).bind(5, q.limit + 1);
  SampleRows rows;
  for (;;) {
    auto row = use->step();
    if (!row.ok()) return row.error().context("query samples");
    if (!*row) break;
    if (rows.json.size() == q.limit) {
      rows.truncated = true;
      break;
    }
    rows.json.emplace_back(use->column_text(0));
  }
  return rows;
}

Result<std::vector<TopEntry>> QueryStore::top(const TopQuery& q) {
  auto use = impl_->use(q.host ? kTopHost : kTopAll);
  if (q.host) use->bind(1, *q.host);
  use->bind(2, q.from).bind(3, q.to).bind(4, q.n);
  std::vector<TopEntry> entries;
  TALLY_TRY_CTX(use->each_row([&](sql::Statement& row) {
    TopEntry e;
    e.host = row.column_text(0);
    e.pid = static_cast<std::uint32_t>(row.column_int(1));
    e.start_time_ns = row.column_u64(2);
    e.cpu_ns = row.column_u64(3);
    e.comm = row.column_text(5);
    e.cmdline = row.column_text(6);
    entries.push_back(std::move(e));
  }),
                "query top processes");
  return entries;
}

Status QueryStore::check() {
  auto use = impl_->use(kCheck);
  auto row = use->step();
  if (!row.ok()) return row.error().context("read database");
  return ok_status();
}

}  // namespace tally::collector
