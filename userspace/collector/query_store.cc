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
    // Each agent with its predecessor (sp, p) and its successor (sn, n, and
    // the successor's gap record g); both are unique, so one row per agent.
    "SELECT a.agent, a.agent_id, a.host, a.last_seq, a.duplicates_rejected, a.samples_stored,"
    " a.credential, p.agent_id, sp.seq, sp.last_seq,"
    " n.agent_id, sn.seq, sn.last_seq, g.reason, g.time_ns, g.detail"
    " FROM agents a"
    " LEFT JOIN successions sp ON sp.successor = a.agent"
    " LEFT JOIN agents p ON p.agent = sp.predecessor"
    " LEFT JOIN successions sn ON sn.predecessor = a.agent"
    " LEFT JOIN agents n ON n.agent = sn.successor"
    " LEFT JOIN gaps g ON g.agent = sn.successor AND g.seq = sn.seq"
    " ORDER BY a.agent_id",
    "SELECT first_seq, last_seq FROM received WHERE agent = ?1 ORDER BY first_seq",
    "SELECT g.seq, g.first_seq, g.last_seq, g.samples, g.reason, g.time_ns, g.detail,"
    " p.agent_id, s.last_seq FROM gaps g"
    " LEFT JOIN successions s ON s.successor = g.agent AND s.seq = g.seq"
    " LEFT JOIN agents p ON p.agent = s.predecessor"
    " WHERE g.agent = ?1 ORDER BY g.seq",
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
  Status fill_agent(std::int64_t agent, const GapRecord* successor_gap, AgentReport& report);
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

// successor_gap: the gap record of the agent's successor, if it has one.
Status QueryStore::Impl::fill_agent(std::int64_t agent, const GapRecord* successor_gap,
                                    AgentReport& report) {
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
      if (!r.column_is_null(7)) {
        d.gap.predecessor = Predecessor{std::string(r.column_text(7)), r.column_u64(8)};
      }
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
  auto txn = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!txn.ok()) return txn.error().context("list agents");
  struct Found {
    std::int64_t agent;
    AgentReport report;
    GapRecord successor_gap;
  };
  std::vector<Found> found;
  {
    auto q = impl_->use(kAgents);
    TALLY_TRY_CTX(q->each_row([&](sql::Statement& row) {
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
    }),
                  "list agents");
  }
  std::vector<AgentReport> reports;
  reports.reserve(found.size());
  for (Found& f : found) {
    TALLY_TRY_CTX(impl_->fill_agent(f.agent, &f.successor_gap, f.report),
                  fmt::format("report agent {}", f.report.agent_id));
    reports.push_back(std::move(f.report));
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
