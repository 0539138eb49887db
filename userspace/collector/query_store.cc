#include "collector/query_store.h"

#include <sqlite3.h>

#include <array>

#include <fmt/format.h>

#include "collector/json_text.h"
#include "collector/saturating_sum.h"
#include "collector/store_schema.h"
#include "tally/sqlite.h"

namespace tally::collector {

namespace {

enum class Stmt : std::size_t {
  agents,
  received,
  gaps,
  partial,
  samples_all,
  samples_host,
  samples_pid,
  samples_host_pid,
  top_all,
  top_host,
  check,
  count_,
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

constexpr sql::StatementSql<Stmt> kSql[] = {
    // Each agent with its predecessor (sp, p) and its successor (sn, n, and
    // the successor's gap record g); both are unique, so one row per agent.
    {Stmt::agents,
     "SELECT a.agent, a.agent_id, a.host, a.last_seq, a.duplicates_rejected, a.samples_stored,"
     " a.credential, p.agent_id, sp.seq, sp.last_seq,"
     " n.agent_id, sn.seq, sn.last_seq, g.reason, g.time_ns, g.detail"
     " FROM agents a"
     " LEFT JOIN successions sp ON sp.successor = a.agent"
     " LEFT JOIN agents p ON p.agent = sp.predecessor"
     " LEFT JOIN successions sn ON sn.predecessor = a.agent"
     " LEFT JOIN agents n ON n.agent = sn.successor"
     " LEFT JOIN gaps g ON g.agent = sn.successor AND g.seq = sn.seq"
     " ORDER BY a.agent_id"},
    {Stmt::received,
     "SELECT first_seq, last_seq FROM received WHERE agent = ?1 ORDER BY first_seq"},
    {Stmt::gaps,
     "SELECT g.seq, g.first_seq, g.last_seq, g.samples, g.reason, g.time_ns, g.detail,"
     " p.agent_id, s.last_seq FROM gaps g"
     " LEFT JOIN successions s ON s.successor = g.agent AND s.seq = g.seq"
     " LEFT JOIN agents p ON p.agent = s.predecessor"
     " WHERE g.agent = ?1 ORDER BY g.seq"},
    {Stmt::partial,
     "SELECT seq, batch_samples, stored FROM batches WHERE agent = ?1"
     " AND stored < batch_samples ORDER BY seq"},
    {Stmt::samples_all, TALLY_SAMPLES_SQL("")},
    {Stmt::samples_host, TALLY_SAMPLES_SQL("s.host = ?1 AND")},
    {Stmt::samples_pid, TALLY_SAMPLES_SQL("s.pid = ?2 AND")},
    {Stmt::samples_host_pid, TALLY_SAMPLES_SQL("s.host = ?1 AND s.pid = ?2 AND")},
    {Stmt::top_all, TALLY_TOP_SQL("")},
    {Stmt::top_host, TALLY_TOP_SQL("host = ?1 AND")},
    {Stmt::check, "SELECT max(agent) FROM agents"},
};
static_assert(sql::lists_every_id_in_order(kSql), "kSql must list every Stmt once, in enum order");

#undef TALLY_SAMPLES_SQL
#undef TALLY_TOP_SQL

// How many SQLite VM instructions pass between looks at the clock: a few
// microseconds of work each (sqlite.org/c3ref/progress_handler.html).
constexpr int kProgressInstructions = 1000;

}  // namespace

struct QueryStore::Impl {
  sql::Database db;
  sql::StatementTable<Stmt> stmts;
  QueryLimits limits;
  std::chrono::steady_clock::time_point deadline;
  bool timed_out = false;

  sql::Statement::Use use(Stmt s) { return stmts.use(s); }
  Status fill_agent(std::int64_t agent, const GapRecord* successor_gap, AgentReport& report);
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
  auto stmts = sql::StatementTable<Stmt>::prepare(impl->db, kSql);
  if (!stmts.ok()) return stmts.error().context("prepare statements");
  impl->stmts = std::move(stmts).value();
  sqlite3_progress_handler(impl->db.handle(), kProgressInstructions, &Impl::on_progress,
                           impl.get());
  return std::unique_ptr<QueryStore>(new QueryStore(std::move(impl)));
}

QueryStore::QueryStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QueryStore::~QueryStore() = default;

// successor_gap: the gap record of the agent's successor, if it has one.
Status QueryStore::Impl::fill_agent(std::int64_t agent, const GapRecord* successor_gap,
                                    AgentReport& report) {
  using Row = sql::Statement;
  std::vector<SeqRange> covered;
  {
    auto q = use(Stmt::received);
    q->bind(1, agent);
    TALLY_TRY_CTX(q->each_row([&](Row& r) {
      covered.push_back({r.column_u64(0), r.column_u64(1)});
    }),
                  "read received seqs");
  }
  {
    auto q = use(Stmt::gaps);
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
      if (!r.column_is_null(7)) {
        d.gap.predecessor = Predecessor{std::string(r.column_text(7)), r.column_u64(8)};
      }
      if (d.gap.first_seq > 0) covered.push_back({d.gap.first_seq, d.gap.last_seq});
      report.declared_lost.push_back(std::move(d));
    }),
                  "read gap records");
  }
  {
    auto q = use(Stmt::partial);
    q->bind(1, agent);
    TALLY_TRY_CTX(q->each_row([&](Row& r) {
      report.partial.push_back({r.column_u64(0), r.column_u64(1), r.column_u64(2)});
    }),
                  "read incomplete batches");
  }
  if (report.successor) {
    // Seqs up to the declared last that neither arrived nor were declared
    // lost by the agent itself: the successor's record declares them lost.
    const AgentLink& next = *report.successor;
    for (const SeqRange& lost : uncovered_ranges(next.last_seq, covered)) {
      DeclaredLost d;
      d.seq = next.seq;
      d.gap = *successor_gap;
      d.gap.first_seq = lost.first;
      d.gap.last_seq = lost.last;
      d.gap.samples = 0;
      d.declared_by = next.agent_id;
      report.declared_lost.push_back(std::move(d));
    }
    if (next.last_seq > 0) covered.push_back({1, next.last_seq});
  }
  report.missing = uncovered_ranges(report.last_seq, std::move(covered));
  return ok_status();
}

Result<std::vector<AgentReport>> QueryStore::agents() {
  impl_->begin_query();
  auto txn = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!txn.ok()) return impl_->failed(txn.error(), "list agents");
  struct Found {
    std::int64_t agent;
    AgentReport report;
    GapRecord successor_gap;
  };
  std::vector<Found> found;
  {
    auto q = impl_->use(Stmt::agents);
    Status listed = q->each_row([&](sql::Statement& row) {
      Found f;
      f.agent = row.column_int(0);
      AgentReport& r = f.report;
      r.agent_id = row.column_text(1);
      r.host = row.column_text(2);
      r.last_seq = row.column_u64(3);
      r.duplicates_rejected = row.column_u64(4);
      r.samples_stored = row.column_u64(5);
      if (!row.column_is_null(6)) r.credential = std::string(row.column_text(6));
      if (!row.column_is_null(7)) {
        r.predecessor =
            AgentLink{std::string(row.column_text(7)), row.column_u64(8), row.column_u64(9)};
      }
      if (!row.column_is_null(10)) {
        r.successor =
            AgentLink{std::string(row.column_text(10)), row.column_u64(11), row.column_u64(12)};
        f.successor_gap.reason = row.column_text(13);
        f.successor_gap.time_ns = row.column_u64(14);
        f.successor_gap.detail = row.column_text(15);
      }
      found.push_back(std::move(f));
    });
    if (!listed.ok()) return impl_->failed(listed.error(), "list agents");
  }
  std::vector<AgentReport> reports;
  reports.reserve(found.size());
  for (Found& f : found) {
    Status filled = impl_->fill_agent(f.agent, &f.successor_gap, f.report);
    if (!filled.ok()) {
      return impl_->failed(filled.error(), fmt::format("report agent {}", f.report.agent_id));
    }
    reports.push_back(std::move(f.report));
  }
  return reports;
}

Result<SampleRows> QueryStore::samples(const SampleQuery& q) {
  Stmt which = q.host ? (q.pid ? Stmt::samples_host_pid : Stmt::samples_host)
                      : (q.pid ? Stmt::samples_pid : Stmt::samples_all);
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
  auto use = impl_->use(q.host ? Stmt::top_host : Stmt::top_all);
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
  auto use = impl_->use(Stmt::check);
  impl_->begin_query();
  auto row = use->step();
  if (!row.ok()) return impl_->failed(row.error(), "read database");
  return ok_status();
}

}  // namespace tally::collector
