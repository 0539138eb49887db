#include "collector/query_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "collector/group_rollup.h"
#include "collector/names_members.h"
#include "collector/sample_chunk.h"
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
  chunks_all,
  chunks_host,
  max_chunk_span,
  names_of,
  names_key_of,
  check,
  count_,
};

// One statement per filter rather than "(?1 IS NULL OR host = ?1)": SQLite
// picks an index at prepare time, and only a plain equality lets it use the
// (host, min_ts_ns) index. Chunks come by their earliest sample's time, so a
// query for the first `limit` samples of a window stops reading early. ?2 is
// the window's start widened by the widest chunk (store_schema.cc).
#define TALLY_CHUNKS_SQL(where)                                  \
  "SELECT chunk, host, data, min_ts_ns FROM chunks WHERE " where \
  " min_ts_ns >= ?2 AND min_ts_ns < ?3 AND max_ts_ns >= ?4"      \
  " ORDER BY min_ts_ns, chunk"

constexpr sql::StatementSql<Stmt> kSql[] = {
    // Each agent with its predecessor (sp, p) and its successor (sn, n, and
    // the successor's gap record g); both are unique, so one row per agent.
    {Stmt::agents,
     "SELECT a.agent, a.agent_id, a.host, a.last_seq, a.duplicates_rejected, a.samples_stored,"
     " a.credential, p.agent_id, sp.seq, sp.last_seq,"
     " n.agent_id, sn.seq, sn.last_seq, g.reason, g.time_ns, g.detail, a.last_seen_ns,"
     " a.software"
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
    {Stmt::chunks_all, TALLY_CHUNKS_SQL("")},
    {Stmt::chunks_host, TALLY_CHUNKS_SQL("host = ?1 AND")},
    {Stmt::max_chunk_span, "SELECT value FROM store_meta WHERE key = 'max_chunk_span_ns'"},
    {Stmt::names_of, "SELECT pid, start_time_ns, names FROM names WHERE names_id = ?1"},
    {Stmt::names_key_of, "SELECT pid, start_time_ns FROM names WHERE names_id = ?1"},
    {Stmt::check, "SELECT max(agent) FROM agents"},
};
static_assert(sql::lists_every_id_in_order(kSql), "kSql must list every Stmt once, in enum order");

#undef TALLY_CHUNKS_SQL

// How many SQLite VM instructions pass between looks at the clock: a few
// microseconds of work each (sqlite.org/c3ref/progress_handler.html).
constexpr int kProgressInstructions = 1000;

}  // namespace

// A chunk as a query reads it.
struct ChunkRow {
  std::int64_t chunk = 0;
  std::string_view host;
  std::uint64_t min_ts_ns = 0;
  std::vector<ChunkSample> samples;
};

struct QueryStore::Impl {
  sql::Database db;
  sql::StatementTable<Stmt> stmts;
  SeriesReader series;
  QueryLimits limits;
  std::chrono::steady_clock::time_point deadline;
  bool timed_out = false;

  sql::Statement::Use use(Stmt s) { return stmts.use(s); }
  // Calls on_chunk(const ChunkRow&) for each chunk that may hold samples of
  // [from, to), by earliest time, until it returns false.
  template <typename F>
  Status each_chunk(const std::optional<std::string>& host, std::uint64_t from, std::uint64_t to,
                    F&& on_chunk);
  Result<const ProcessNames*> process_of(std::int64_t names_id);
  Result<ProcessNames> names_row(std::int64_t names_id);
  std::unordered_map<std::int64_t, ProcessNames> names_cache;  // one query's, no names text
  bool out_of_time();
  Status fill_agent(std::int64_t agent, const GapRecord* successor_gap, AgentReport& report);
  Result<TopRows> top_of_rollups(const TopQuery& q);
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
  names_cache.clear();
}

// The clock check of work done outside SQLite (decoding chunks).
bool QueryStore::Impl::out_of_time() {
  if (limits.time.count() == 0 || std::chrono::steady_clock::now() < deadline) return false;
  timed_out = true;
  return true;
}

template <typename F>
Status QueryStore::Impl::each_chunk(const std::optional<std::string>& host, std::uint64_t from,
                                    std::uint64_t to, F&& on_chunk) {
  std::uint64_t widest = 0;
  {
    auto span = use(Stmt::max_chunk_span);
    auto row = span->step();
    if (!row.ok()) return row.error();
    if (*row) widest = span->column_u64(0);
  }
  auto chunks = use(host ? Stmt::chunks_host : Stmt::chunks_all);
  if (host) chunks->bind(1, *host);
  chunks->bind(2, from - std::min(from, widest)).bind(3, to).bind(4, from);
  ChunkRow chunk;
  for (;;) {
    auto row = chunks->step();
    if (!row.ok()) return row.error();
    if (!*row) return ok_status();
    if (out_of_time()) return Error::format("interrupted");
    chunk.chunk = chunks->column_int(0);
    chunk.host = chunks->column_text(1);
    chunk.min_ts_ns = chunks->column_u64(3);
    auto decoded = decode_chunk(chunks->column_blob(2));
    if (!decoded.ok()) return decoded.error().context(fmt::format("chunk {}", chunk.chunk));
    chunk.samples = std::move(decoded).value();
    if (!on_chunk(std::as_const(chunk))) return ok_status();
  }
}

// A names row's pid and start time, read once per query.
Result<const ProcessNames*> QueryStore::Impl::process_of(std::int64_t names_id) {
  auto found = names_cache.find(names_id);
  if (found != names_cache.end()) return &found->second;
  auto q = use(Stmt::names_key_of);
  q->bind(1, names_id);
  auto row = q->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::format("names row {} is missing", names_id);
  ProcessNames n;
  n.pid = static_cast<std::uint32_t>(q->column_u64(0));
  n.start_time_ns = q->column_u64(1);
  return &names_cache.emplace(names_id, std::move(n)).first->second;
}

// A names row whole. Not kept: a command line can be a megabyte, and an
// answer holds it in each sample of the process anyway.
Result<ProcessNames> QueryStore::Impl::names_row(std::int64_t names_id) {
  auto q = use(Stmt::names_of);
  q->bind(1, names_id);
  auto row = q->step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::format("names row {} is missing", names_id);
  return ProcessNames{static_cast<std::uint32_t>(q->column_u64(0)), q->column_u64(1),
                      std::string(q->column_text(2))};
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
  auto impl = std::make_unique<Impl>(Impl{std::move(db).value(), {}, {}, limits, {}, false, {}});
  const std::string what = fmt::format("open collector database {}", path);
  TALLY_TRY_CTX(prepare_reader(impl->db), what);
  TALLY_TRY_CTX(register_saturating_sum(impl->db), what);
  auto stmts = sql::StatementTable<Stmt>::prepare(impl->db, kSql);
  if (!stmts.ok()) return stmts.error().context("prepare statements");
  impl->stmts = std::move(stmts).value();
  auto series = SeriesReader::prepare(impl->db);
  if (!series.ok()) return series.error().context("prepare statements");
  impl->series = std::move(series).value();
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
      r.last_seen_ns = row.column_u64(16);
      r.software = row.column_text(17);
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

namespace {

// A sample found by a query, in the order answers list them: by time, ties
// in arrival order (chunk, then place in it).
struct FoundSample {
  std::uint64_t ts_ns;
  std::int64_t chunk;
  std::size_t at;
  std::string json;
  bool operator<(const FoundSample& o) const {
    return std::tie(ts_ns, chunk, at) < std::tie(o.ts_ns, o.chunk, o.at);
  }
};

// What an answer of at most `limit` samples and `bytes` bytes keeps of
// `found`, plus one sample when more would have matched. Applied when found
// passes the bounds by a quarter, so that sorting is amortized; once the
// answer is full, samples that sort after its last are not even rendered.
struct SampleCut {
  std::uint64_t limit;
  std::uint64_t bytes;
  bool by_bytes = false;
  std::optional<std::tuple<std::uint64_t, std::int64_t, std::size_t>> last;  // once full

  void apply(std::vector<FoundSample>& found) {
    std::sort(found.begin(), found.end());
    if (found.size() > limit + 1) found.resize(limit + 1);
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < found.size(); ++i) {
      total += found[i].json.size();
      if (total > bytes && i > 0) {
        found.resize(i + 1);  // the one past the bound says "truncated"
        by_bytes = true;
        break;
      }
    }
    if (found.size() > limit || by_bytes) {
      last = std::tuple(found.back().ts_ns, found.back().chunk, found.back().at);
    }
  }
  bool due(std::size_t count, std::uint64_t pending_bytes) const {
    return count > limit + limit / 4 + 1 || pending_bytes > bytes + bytes / 4;
  }
  // Whether a sample would sort after the full answer's last one.
  bool beyond(std::uint64_t ts_ns, std::int64_t chunk, std::size_t at) const {
    return last && std::tuple(ts_ns, chunk, at) > *last;
  }
};

}  // namespace

Result<SampleRows> QueryStore::samples(const SampleQuery& q) {
  impl_->begin_query();
  auto snapshot = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!snapshot.ok()) return impl_->failed(snapshot.error(), "query samples");
  std::vector<FoundSample> found;
  SampleCut cut{q.limit, impl_->limits.answer_bytes, false, std::nullopt};
  std::uint64_t pending_bytes = 0;
  Status failure = ok_status();
  Status read = impl_->each_chunk(q.host, q.from, q.to, [&](const ChunkRow& chunk) {
    // Chunks come by earliest time: once the answer is full, a chunk that
    // starts after its last sample adds nothing.
    if (cut.last && chunk.min_ts_ns > std::get<0>(*cut.last)) return false;
    for (std::size_t i = 0; i < chunk.samples.size(); ++i) {
      const ChunkSample& s = chunk.samples[i];
      if (s.ts_ns < q.from || s.ts_ns >= q.to) continue;
      if (cut.beyond(s.ts_ns, chunk.chunk, i)) continue;
      if (q.pid && !s.is_process) continue;
      std::optional<ProcessNames> names;
      if (s.is_process) {
        if (q.pid) {
          auto process = impl_->process_of(s.names_id);
          if (!process.ok()) {
            failure = process.error().context(fmt::format("chunk {}", chunk.chunk));
            return false;
          }
          if ((*process)->pid != *q.pid) continue;
        }
        auto n = impl_->names_row(s.names_id);
        if (!n.ok()) {
          failure = n.error().context(fmt::format("chunk {}", chunk.chunk));
          return false;
        }
        names = std::move(*n);
      }
      found.push_back(FoundSample{s.ts_ns, chunk.chunk, i,
                                  sample_json(s, chunk.host, names ? &*names : nullptr)});
      pending_bytes += found.back().json.size();
      if (cut.due(found.size(), pending_bytes)) {
        cut.apply(found);
        pending_bytes = 0;
        for (const auto& f : found) pending_bytes += f.json.size();
      }
    }
    return true;
  });
  if (!read.ok()) return impl_->failed(read.error(), "query samples");
  if (!failure.ok()) return impl_->failed(failure.error(), "query samples");
  cut.apply(found);
  SampleRows rows;
  rows.truncated = found.size() > q.limit || cut.by_bytes;
  if (rows.truncated) found.pop_back();
  rows.json.reserve(found.size());
  for (FoundSample& f : found) rows.json.push_back(std::move(f.json));
  return rows;
}

namespace {

struct ProcessTotal {
  std::uint64_t cpu_ns = 0;
  std::uint64_t latest_ts_ns = 0;
  std::int64_t latest_names_id = 0;
};

// A process across pid reuse and names changes: (host, pid, start time).
using ProcessKey = std::tuple<std::string, std::uint32_t, std::uint64_t>;

}  // namespace

Result<SeriesRows> QueryStore::series(const SeriesQuery& q) {
  impl_->begin_query();
  auto snapshot = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!snapshot.ok()) return impl_->failed(snapshot.error(), "query series");
  auto rows = impl_->series.series(q, [this] { return impl_->out_of_time(); });
  if (!rows.ok()) return impl_->failed(rows.error(), "query series");
  return rows;
}

namespace {

// "1234:5678" -> pid and start time; zeros if damaged.
std::pair<std::uint32_t, std::uint64_t> process_key(std::string_view group) {
  std::uint32_t pid = 0;
  std::uint64_t start = 0;
  const auto colon = group.find(':');
  if (colon == group.npos) return {0, 0};
  std::from_chars(group.data(), group.data() + colon, pid);
  std::from_chars(group.data() + colon + 1, group.data() + group.size(), start);
  return {pid, start};
}

}  // namespace

// A long window, or a grouping: the sums of the rollups (series_query.h).
Result<TopRows> QueryStore::Impl::top_of_rollups(const TopQuery& q) {
  // Minute rollups up to six hours (~60 rows per host), hour rollups
  // beyond: a day of a 100-host fleet is then ~50,000 rows, not ~10^6.
  constexpr std::uint64_t kMinutesUpToNs = 6 * 3600ull * 1'000'000'000;
  SeriesQuery s;
  s.host = q.host;
  s.group_by = q.by;
  s.from = q.from;
  s.to = q.to;
  s.top = q.n;
  s.totals_only = true;
  const std::uint64_t window = q.to - q.from;
  s.step_ns = window <= TopQuery::kRawTopNs ? 1'000'000'000
              : window <= kMinutesUpToNs    ? 60'000'000'000
                                            : 3600'000'000'000;
  auto rows = series.series(s, [this] { return out_of_time(); });
  if (!rows.ok()) return rows.error();
  TopRows out;
  out.by = q.by;
  out.source = rows->source;
  for (Series& named : rows->named) {
    TopEntry e;
    e.cpu_ns = named.cpu_ns_total;
    if (q.by == GroupKind::process) {
      e.host = std::move(named.host);
      std::tie(e.pid, e.start_time_ns) = process_key(named.group);
      e.comm = std::move(named.label);
    } else if (q.by == GroupKind::host) {
      e.host = named.group;
      e.group = std::move(named.group);
    } else {
      e.group = std::move(named.group);
    }
    out.top.push_back(std::move(e));
  }
  return out;
}

Result<TopRows> QueryStore::top(const TopQuery& q) {
  impl_->begin_query();
  if (q.by != GroupKind::process || (q.window_given && q.to - q.from > TopQuery::kRawTopNs)) {
    auto snapshot = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
    if (!snapshot.ok()) return impl_->failed(snapshot.error(), "query top");
    auto rows = impl_->top_of_rollups(q);
    if (!rows.ok()) return impl_->failed(rows.error(), "query top");
    return rows;
  }
  auto snapshot = sql::Transaction::begin(impl_->db, sql::Transaction::Kind::read);
  if (!snapshot.ok()) return impl_->failed(snapshot.error(), "query top processes");
  std::map<ProcessKey, ProcessTotal> totals;
  Status failure = ok_status();
  Status read = impl_->each_chunk(q.host, q.from, q.to, [&](const ChunkRow& chunk) {
    for (const ChunkSample& s : chunk.samples) {
      if (!s.is_process || s.ts_ns < q.from || s.ts_ns >= q.to) continue;
      auto n = impl_->process_of(s.names_id);
      if (!n.ok()) {
        failure = n.error().context(fmt::format("chunk {}", chunk.chunk));
        return false;
      }
      ProcessTotal& t = totals[ProcessKey{chunk.host, (*n)->pid, (*n)->start_time_ns}];
      t.cpu_ns = saturating_add(t.cpu_ns, s.cpu_ns);
      if (s.ts_ns >= t.latest_ts_ns) {
        t.latest_ts_ns = s.ts_ns;
        t.latest_names_id = s.names_id;
      }
    }
    return true;
  });
  if (!read.ok()) return impl_->failed(read.error(), "query top processes");
  if (!failure.ok()) return impl_->failed(failure.error(), "query top processes");

  std::vector<std::pair<const ProcessKey*, const ProcessTotal*>> order;
  order.reserve(totals.size());
  for (const auto& [key, total] : totals) order.emplace_back(&key, &total);
  const std::size_t n = std::min<std::uint64_t>(q.n, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n), order.end(),
                    [](const auto& a, const auto& b) {
                      if (a.second->cpu_ns != b.second->cpu_ns) {
                        return a.second->cpu_ns > b.second->cpu_ns;
                      }
                      return *a.first < *b.first;
                    });
  TopRows rows;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& [key, total] = order[i];
    auto names = impl_->names_row(total->latest_names_id);
    if (!names.ok()) return impl_->failed(names.error(), "query top processes");
    TopEntry e;
    NamesMembers members = parse_names_members(names->names);
    e.comm = std::move(members.comm);
    e.cmdline = std::move(members.cmdline);
    bytes += e.comm.size() + e.cmdline.size() + 128;
    if (bytes > impl_->limits.answer_bytes && !rows.top.empty()) {
      rows.truncated = true;
      break;
    }
    std::tie(e.host, e.pid, e.start_time_ns) = *key;
    e.cpu_ns = total->cpu_ns;
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
