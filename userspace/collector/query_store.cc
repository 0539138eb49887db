#include "query_store.h"

#include <sqlite3.h>

#include <array>

#include <fmt/format.h>

#include "json_text.h"
#include "saturating_sum.h"
#include "store_schema.h"
#include "tally/sqlite.h"

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
// A sample's names are joined in from `names` (NULL for host samples and
// for rows from before schema version 4, whose JSON holds them).
#define TALLY_SAMPLES_SQL(where)                               \
  "SELECT s.json, s.names_at, n.names FROM samples s"          \
  " LEFT JOIN names n ON n.names_id = s.names_id WHERE " where \
  " s.ts_ns >= ?3 AND s.ts_ns < ?4"                            \
  " ORDER BY s.ts_ns, s.rowid LIMIT ?5"
// Bare columns with a single max() come from the row holding the maximum
// (sqlite.org/lang_select.html#bareagg): `latest` is the process's latest
// sample, whose names are read for the n processes kept only. The sum
// saturates instead of failing (saturating_sum.h).
#define TALLY_TOP_SQL(where)                                                           \
  "SELECT t.host, t.pid, t.start_time_ns, t.cpu,"                                      \
  " json_extract(coalesce('{' || n.names || '}', s.json), '$.comm'),"                  \
  " json_extract(coalesce('{' || n.names || '}', s.json), '$.cmdline')"                \
  " FROM (SELECT host, pid, start_time_ns, saturating_sum(cpu_ns) AS cpu, max(ts_ns)," \
  "       rowid AS latest"                                                             \
  "       FROM samples WHERE " where                                                   \
  "       pid IS NOT NULL AND ts_ns >= ?2 AND ts_ns < ?3"                              \
  "       GROUP BY host, pid, start_time_ns"                                           \
  "       ORDER BY cpu DESC, host, pid, start_time_ns LIMIT ?4) t"                     \
  " JOIN samples s ON s.rowid = t.latest LEFT JOIN names n ON n.names_id = s.names_id" \
  " ORDER BY t.cpu DESC, t.host, t.pid, t.start_time_ns"

constexpr std::array<const char*, kStmtCount> kSql = {
    "SELECT agent, agent_id, host, last_seq, duplicates_rejected, samples_stored"
    " FROM agents ORDER BY agent_id",
    "SELECT first_seq, last_seq FROM received WHERE agent = ?1 ORDER BY first_seq",
    "SELECT seq, first_seq, last_seq, samples, reason, time_ns, detail FROM gaps"
    " WHERE agent = ?1 ORDER BY seq",
    "SELECT seq, batch_samples, stored FROM batches WHERE agent = ?1"
    " AND stored < batch_samples ORDER BY seq",
    TALLY_SAMPLES_SQL(""),
    TALLY_SAMPLES_SQL("s.host = ?1 AND"),
    TALLY_SAMPLES_SQL("s.pid = ?2 AND"),
    TALLY_SAMPLES_SQL("s.host = ?1 AND s.pid = ?2 AND"),
    TALLY_TOP_SQL(""),
    TALLY_TOP_SQL("host = ?1 AND"),
    "SELECT max(agent) FROM agents",
};

#undef TALLY_SAMPLES_SQL
#undef TALLY_TOP_SQL

// How many SQLite VM instructions pass between looks at the clock: a few
// microseconds of work each (sqlite.org/c3ref/progress_handler.html).
constexpr int kProgressInstructions = 1000;

}  // namespace

struct QueryStore::Impl {
  sql::Database db;
  std::array<sql::Statement, kStmtCount> stmts;
  QueryLimits limits;
  std::chrono::steady_clock::time_point deadline;
  bool timed_out = false;

  sql::Statement::Use use(Stmt s) { return stmts[s].use(); }
  Status fill_agent(std::int64_t agent, AgentReport& report);
  // Starts the clock of one query.
  void begin_query();
  // The error of a failed query: says so plainly when it was the limit.
  Error failed(const Error& e, std::string_view what) const;
  static int on_progress(void* impl);
};

int QueryStore::Impl::on_progress(void* impl) {
  auto* self = static_cast<Impl*>(impl);
  if (self->limits.time.count() == 0 || std::chrono::steady_clock::now() < self->deadline) return 0;
  self->timed_out = true;
  return 1;  // interrupts the statement: step() fails with SQLITE_INTERRUPT
}

void QueryStore::Impl::begin_query() {
  deadline = std::chrono::steady_clock::now() + limits.time;
  timed_out = false;
}

Error QueryStore::Impl::failed(const Error& e, std::string_view what) const {
  if (!timed_out) return e.context(what);
  return Error::format(
      "{}: stopped after the query time limit of {} ms (--query-timeout-ms); ask for a shorter "
      "window, one host, or fewer rows",
      what, limits.time.count());
}

Result<std::unique_ptr<QueryStore>> QueryStore::open(const std::string& path, QueryLimits limits) {
  auto db = sql::Database::open(path, sql::Database::Mode::read_only);
  if (!db.ok()) return db.error();
  auto impl = std::make_unique<Impl>(Impl{std::move(db).value(), {}, limits, {}, false});
  const std::string what = fmt::format("open collector database {}", path);
  TALLY_TRY_CTX(prepare_reader(impl->db), what);
  TALLY_TRY_CTX(register_saturating_sum(impl->db), what);
  TALLY_TRY_CTX(sql::prepare_all(impl->db, kSql, impl->stmts), "prepare statements");
  sqlite3_progress_handler(impl->db.handle(), kProgressInstructions, &Impl::on_progress,
                           impl.get());
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
  impl_->begin_query();
  auto txn = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!txn.ok()) return impl_->failed(txn.error(), "list agents");
  std::vector<std::pair<std::int64_t, AgentReport>> found;
  {
    auto q = impl_->use(kAgents);
    Status listed = q->each_row([&](sql::Statement& row) {
      AgentReport r;
      r.agent_id = row.column_text(1);
      r.host = row.column_text(2);
      r.last_seq = row.column_u64(3);
      r.duplicates_rejected = row.column_u64(4);
      r.samples_stored = row.column_u64(5);
      found.emplace_back(row.column_int(0), std::move(r));
    });
    if (!listed.ok()) return impl_->failed(listed.error(), "list agents");
  }
  std::vector<AgentReport> reports;
  reports.reserve(found.size());
  for (auto& [agent, report] : found) {
    Status filled = impl_->fill_agent(agent, report);
    if (!filled.ok()) {
      return impl_->failed(filled.error(), fmt::format("report agent {}", report.agent_id));
    }
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
  impl_->begin_query();
  SampleRows rows;
  std::uint64_t bytes = 0;
  for (;;) {
    auto row = use->step();
    if (!row.ok()) return impl_->failed(row.error(), "query samples");
    if (!*row) break;
    const std::string_view json = use->column_text(0);
    const std::string_view names = use->column_text(2);
    bytes += json.size() + names.size() + 2;
    if (rows.json.size() == q.limit || (bytes > impl_->limits.answer_bytes && !rows.json.empty())) {
      rows.truncated = true;
      break;
    }
    rows.json.push_back(with_names(json, use->column_u64(1), names));
  }
  return rows;
}

Result<TopRows> QueryStore::top(const TopQuery& q) {
  auto use = impl_->use(q.host ? kTopHost : kTopAll);
  if (q.host) use->bind(1, *q.host);
  use->bind(2, q.from).bind(3, q.to).bind(4, q.n);
  impl_->begin_query();
  TopRows rows;
  std::uint64_t bytes = 0;
  for (;;) {
    auto row = use->step();
    if (!row.ok()) return impl_->failed(row.error(), "query top processes");
    if (!*row) break;
    TopEntry e;
    e.comm = use->column_text(4);
    e.cmdline = use->column_text(5);
    bytes += e.comm.size() + e.cmdline.size() + 128;
    if (bytes > impl_->limits.answer_bytes && !rows.top.empty()) {
      rows.truncated = true;
      break;
    }
    e.host = use->column_text(0);
    e.pid = static_cast<std::uint32_t>(use->column_int(1));
    e.start_time_ns = use->column_u64(2);
    e.cpu_ns = use->column_u64(3);
    rows.top.push_back(std::move(e));
  }
  return rows;
}

Status QueryStore::check() {
  auto use = impl_->use(kCheck);
  impl_->begin_query();
  auto row = use->step();
  if (!row.ok()) return impl_->failed(row.error(), "read database");
  return ok_status();
}

}  // namespace tally::collector
