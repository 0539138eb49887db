#include "collector/batch_store.h"

#include <algorithm>
#include <array>
#include <optional>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include "collector/checkpointer.h"
#include "collector/chunk_writer.h"
#include "collector/db_files.h"
#include "collector/json_text.h"
#include "collector/names_rows.h"
#include "tally/log.h"
#include "tally/sqlite.h"
#include "tally/time_util.h"

namespace tally::collector {

namespace {

enum class Stmt : std::size_t {
  agent_find,
  agent_insert,
  agent_bind,
  agent_update,
  batch_find,
  batch_insert,
  batch_add,
  gap_find,
  gap_insert,
  chunk_ranges,
  range_below,
  range_starting_at,
  range_insert,
  range_delete,
  range_set_last,
  names_upsert,
  names_find,
  names_delete,
  names_prune,
  predecessor_of,
  successor_of,
  succession_insert,
  host_find,
  host_bind,
  host_rebind,
  names_current,
  count_,
};

// Counters that only grow add saturating: SQLite's `+` turns an overflowing
// integer into an inexact REAL. samples_stored cannot get there (it counts
// rows), but duplicates_rejected counts what agents send, however often.
#define TALLY_SATURATING_ADD(column, param)                                                      \
  "CASE WHEN " column " > 9223372036854775807 - " param " THEN 9223372036854775807 ELSE " column \
  " + " param " END"

constexpr sql::StatementSql<Stmt> kSql[] = {
    {Stmt::agent_find, "SELECT agent, credential FROM agents WHERE agent_id = ?1"},
    {Stmt::agent_insert, "INSERT INTO agents (agent_id, host, credential) VALUES (?1, ?2, ?3)"},
    {Stmt::agent_bind, "UPDATE agents SET credential = ?2 WHERE agent = ?1"},
    {Stmt::agent_update,
     "UPDATE agents SET host = ?2, last_seq = max(last_seq, ?3),"
     " duplicates_rejected = " TALLY_SATURATING_ADD(
         "duplicates_rejected", "?4") ","
                                      " samples_stored = " TALLY_SATURATING_ADD(
                                          "samples_stored",
                                          "?5") ","
                                                " last_seen_ns = ?6,"
                                                " software = ?7 WHERE agent = ?1"},
    {Stmt::batch_find, "SELECT batch_samples, stored FROM batches WHERE agent = ?1 AND seq = ?2"},
    {Stmt::batch_insert,
     "INSERT INTO batches (agent, seq, batch_samples, stored) VALUES (?1, ?2, ?3, 0)"},
    // Cannot overflow: a batch stores each index below batch_samples once.
    {Stmt::batch_add, "UPDATE batches SET stored = stored + ?3 WHERE agent = ?1 AND seq = ?2"},
    {Stmt::gap_find, "SELECT 1 FROM gaps WHERE agent = ?1 AND seq = ?2"},
    {Stmt::gap_insert,
     "INSERT INTO gaps (agent, seq, first_seq, last_seq, samples, reason, time_ns, detail)"
     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (agent, seq) DO NOTHING"},
    {Stmt::chunk_ranges,
     "SELECT first_idx, samples FROM chunks WHERE agent = ?1 AND seq = ?2 ORDER BY first_idx"},
    {Stmt::range_below,
     "SELECT first_seq, last_seq FROM received WHERE agent = ?1 AND first_seq <= ?2"
     " ORDER BY first_seq DESC LIMIT 1"},
    {Stmt::range_starting_at, "SELECT last_seq FROM received WHERE agent = ?1 AND first_seq = ?2"},
    {Stmt::range_insert, "INSERT INTO received (agent, first_seq, last_seq) VALUES (?1, ?2, ?3)"},
    {Stmt::range_delete, "DELETE FROM received WHERE agent = ?1 AND first_seq = ?2"},
    {Stmt::range_set_last, "UPDATE received SET last_seq = ?3 WHERE agent = ?1 AND first_seq = ?2"},
    // Rewritten only when the names changed or are getting old (?5 is now,
    // ?6 half the maximum age before it): an agent of protocol version 1
    // sends every name in every batch, and rewriting ~1,000 unchanged rows
    // per batch would halve ingestion.
    {Stmt::names_upsert,
     "INSERT INTO process_names (agent, pid, start_time_ns, names_id, recorded_ns)"
     " VALUES (?1, ?2, ?3, ?4, ?5)"
     " ON CONFLICT (agent, pid, start_time_ns) DO UPDATE SET names_id = excluded.names_id,"
     " recorded_ns = excluded.recorded_ns WHERE names_id != excluded.names_id OR recorded_ns < ?6"},
    {Stmt::names_find,
     "SELECT names_id FROM process_names WHERE agent = ?1 AND pid = ?2 AND start_time_ns = ?3"},
    {Stmt::names_delete,
     "DELETE FROM process_names WHERE agent = ?1 AND pid = ?2 AND start_time_ns = ?3"},
    {Stmt::names_prune, "DELETE FROM process_names WHERE recorded_ns < ?1"},
    {Stmt::predecessor_of,
     "SELECT s.seq, a.agent_id FROM successions s JOIN agents a ON a.agent = s.predecessor"
     " WHERE s.successor = ?1"},
    {Stmt::successor_of,
     "SELECT s.seq, a.agent_id FROM successions s JOIN agents a ON a.agent = s.successor"
     " WHERE s.predecessor = ?1"},
    {Stmt::succession_insert,
     "INSERT INTO successions (successor, seq, predecessor, last_seq) VALUES (?1, ?2, ?3, ?4)"},
    {Stmt::host_find, "SELECT credential FROM hosts WHERE host = ?1"},
    {Stmt::host_bind, "INSERT INTO hosts (host, credential) VALUES (?1, ?2)"},
    {Stmt::host_rebind, "UPDATE hosts SET credential = ?2 WHERE host = ?1"},
    // The common case first: the names a body carries are the process's
    // current ones, recorded not long ago.
    {Stmt::names_current,
     "SELECT p.names_id, p.recorded_ns, n.names FROM process_names p"
     " JOIN names n ON n.names_id = p.names_id"
     " WHERE p.agent = ?1 AND p.pid = ?2 AND p.start_time_ns = ?3"},
};
static_assert(sql::lists_every_id_in_order(kSql), "kSql must list every Stmt once, in enum order");

#undef TALLY_SATURATING_ADD

// How often forgotten names are looked for: a scan of the names table.
constexpr std::uint64_t kNamesPruneEveryNs = 3600ull * 1'000'000'000;

// How many unknown processes a 409 lists (the count says how many in all).
constexpr std::size_t kUnknownListed = 16;

// WAL pages after which the background checkpointer copies the WAL back,
// and after which it has the WAL start over, holding the writer back for a
// moment: 1 and 4 MiB with the 4 KiB pages of a file made by schema 5 or
// later (store_schema.cc), 4 and 16 MiB with the 16 KiB pages of older
// files. The WAL is most of a small database's bytes (docs/BENCHMARKS.md,
// row 6): on an 8-hour burst of four hosts with housekeeping writing
// rollups beside it, these kept it at 7.4 bytes per sample where 2 and 8
// MiB gave 12; the same ingest rate. journal_size_limit keeps the WAL file
// at most 64 MiB.
constexpr Checkpointer::Thresholds kCheckpointThresholds{256, 1024, std::chrono::milliseconds(250)};

struct BatchRow {
  std::uint64_t batch_samples;
  std::uint64_t stored;
};

struct AgentRow {
  std::int64_t key = 0;
  std::optional<std::string> credential;  // bound to; nullopt: not bound
};

// One end of a succession: the other agent and the successor's gap seq.
struct Link {
  std::uint64_t seq;
  std::string agent_id;
};

// Whether a request of `credential` may act for an agent bound as `a` is.
bool refuses(const AgentRow& a, const std::optional<std::string>& credential) {
  return credential && a.credential && *a.credential != *credential;
}

// An agent id or host as it appears in messages: quoted and escaped, since
// it is the client's text and the messages also go to the log.
std::string quote_id(std::string_view id) {
  std::string out;
  append_json_string(out, id);
  return out;
}

StoreOutcome forbidden(std::string why, const AgentRow& a) {
  StoreOutcome o{StoreOutcome::Kind::forbidden, 0, std::move(why)};
  o.bound_credential = *a.credential;
  return o;
}

}  // namespace

struct BatchStore::Impl {
  // Declared first so that it is destroyed last, after the writer
  // connection whose commit hook refers to it.
  std::unique_ptr<Checkpointer> checkpointer;
  sql::Database db;
  sql::StatementTable<Stmt> stmts;
  ChunkWriter chunks;
  NamesRows names;
  std::unique_ptr<Housekeeper> housekeeper;
  std::uint64_t names_max_age_ns = 0;
  std::function<std::uint64_t()> clock;
  std::uint64_t now_ns = 0;         // the clock, read once per request
  std::uint64_t next_prune_ns = 0;  // when to look for forgotten names again
  std::vector<std::string> rebind_from;

  // Whether a binding to `bound` gives way to a request of `credential`.
  bool rebinds(std::string_view bound, const std::optional<std::string>& credential) const {
    return credential && bound != *credential &&
           std::find(rebind_from.begin(), rebind_from.end(), bound) != rebind_from.end();
  }

  sql::Statement::Use use(Stmt s) { return stmts.use(s); }
  Status prune_names();

  Result<AgentRow> find_or_add_agent(std::string_view agent_id, std::string_view host,
                                     const std::optional<std::string>& credential);
  Result<std::optional<Link>> find_link(Stmt which, std::int64_t agent);
  Result<std::optional<StoreOutcome>> check_hosts(const BatchRequest& r,
                                                  const std::string& credential);
  Result<std::optional<StoreOutcome>> add_succession(std::int64_t agent, const BatchRequest& r,
                                                     const Predecessor& p,
                                                     const std::optional<std::string>& credential);
  Result<std::optional<BatchRow>> find_batch(std::int64_t agent, std::uint64_t seq);
  Result<bool> has_gap(std::int64_t agent, std::uint64_t seq);
  Status mark_received(std::int64_t agent, std::uint64_t seq);
  Result<std::int64_t> record_names(std::int64_t agent, const StoredSample& s);
  Result<std::optional<StoreOutcome>> resolve_names(std::int64_t agent, const SamplesPiece& piece,
                                                    std::vector<std::optional<std::int64_t>>& ids);
  Result<std::vector<bool>> stored_already(std::int64_t agent, std::uint64_t seq,
                                           const SamplesPiece& piece);
  Result<StoreOutcome> store_piece(std::int64_t agent, const BatchRequest& r,
                                   const SamplesPiece& piece, std::uint64_t& duplicates);
  Result<StoreOutcome> store_gap(std::int64_t agent, const BatchRequest& r, const GapRecord& gap,
                                 const std::optional<std::string>& credential);
};

Result<std::unique_ptr<BatchStore>> BatchStore::open(const Options& options) {
  Status files = prepare_db_files(options.path);
  if (!files.ok()) return files.error();
  auto db = sql::Database::open(options.path, sql::Database::Mode::read_write_create);
  if (!db.ok()) return db.error();
  auto impl =
      std::make_unique<Impl>(Impl{nullptr, std::move(db).value(), {}, {}, {}, {}, 0, {}, 0, 0, {}});
  impl->names_max_age_ns = options.names_max_age_ns;
  impl->rebind_from = options.rebind_from;
  impl->clock = options.clock ? options.clock : [] { return realtime_ns(); };
  std::string what = fmt::format("open collector database {}", options.path);
  TALLY_TRY_CTX(prepare_writer(impl->db, options.durability, options.max_page_count, impl->clock()),
                what);
  // After prepare_writer(): the file is in WAL mode now.
  auto checkpointer = Checkpointer::open(options.path, kCheckpointThresholds);
  if (!checkpointer.ok()) return checkpointer.error().context(what);
  impl->checkpointer = std::move(checkpointer).value();
  TALLY_TRY_CTX(impl->checkpointer->attach(impl->db), what);
  auto stmts = sql::StatementTable<Stmt>::prepare(impl->db, kSql);
  if (!stmts.ok()) return stmts.error().context("prepare statements");
  impl->stmts = std::move(stmts).value();
  auto chunks = ChunkWriter::prepare(impl->db);
  if (!chunks.ok()) return chunks.error().context("prepare statements");
  impl->chunks = std::move(chunks).value();
  auto names = NamesRows::prepare(impl->db);
  if (!names.ok()) return names.error().context("prepare statements");
  impl->names = std::move(names).value();
  auto housekeeper = Housekeeper::prepare(impl->db, options.retention);
  if (!housekeeper.ok()) return housekeeper.error();
  impl->housekeeper = std::move(housekeeper).value();
  return std::unique_ptr<BatchStore>(new BatchStore(std::move(impl)));
}

BatchStore::BatchStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BatchStore::~BatchStore() = default;

// A new agent is bound to `credential` at once; an unbound one (from before
// authentication, or before schema version 4) is bound now. One bound to
// another credential is returned as it is: the caller refuses the request,
// whose transaction is then rolled back.
Result<AgentRow> BatchStore::Impl::find_or_add_agent(std::string_view agent_id,
                                                     std::string_view host,
                                                     const std::optional<std::string>& credential) {
  {
    auto find = use(Stmt::agent_find);
    find->bind(1, agent_id);
    auto row = find->step();
    if (!row.ok()) return row.error();
    if (*row) {
      const std::int64_t key = find->column_int(0);
      // The bound credential as a plain string and a flag: g++ 12 at -O2
      // warns (wrongly) of an uninitialized optional<string> when one that
      // was reset is moved.
      const bool bound = !find->column_is_null(1);
      const std::string bound_to(bound ? find->column_text(1) : std::string_view());
      if (bound && !rebinds(bound_to, credential)) return AgentRow{key, bound_to};
      if (bound) {
        log::debug("agent {} moves from credential \"{}\" to \"{}\" (--rebind-from)",
                   quote_id(agent_id), bound_to, *credential);
      }
      if (!credential) return AgentRow{key, std::nullopt};
      auto bind = use(Stmt::agent_bind);
      bind->bind(1, key).bind(2, *credential);
      TALLY_TRY_CTX(bind->run(), "bind agent to its credential");
      return AgentRow{key, credential};
    }
  }
  auto insert = use(Stmt::agent_insert);
  insert->bind(1, agent_id).bind(2, host).bind(3, credential);
  TALLY_TRY_CTX(insert->run(), "add agent");
  return AgentRow{db.last_insert_rowid(), credential};
}

// The host names a request writes (the envelope's, and each sample's, which
// the queries filter on) must belong to its credential or be new: then they
// are bound to it. The outcome comes back only when one is refused.
Result<std::optional<StoreOutcome>> BatchStore::Impl::check_hosts(const BatchRequest& r,
                                                                  const std::string& credential) {
  std::vector<std::string_view> hosts{r.host};
  if (const auto* piece = std::get_if<SamplesPiece>(&r.body)) {
    for (const StoredSample& s : piece->samples) {
      // Nearly always one host per body: a linear scan is the cheap way.
      if (std::find(hosts.begin(), hosts.end(), s.host) == hosts.end()) hosts.push_back(s.host);
    }
  }
  for (std::string_view host : hosts) {
    auto find = use(Stmt::host_find);
    find->bind(1, host);
    auto row = find->step();
    if (!row.ok()) return row.error();
    if (*row) {
      if (find->column_text(0) == credential) continue;
      if (rebinds(find->column_text(0), credential)) {
        auto rebind = use(Stmt::host_rebind);
        rebind->bind(1, host).bind(2, credential);
        TALLY_TRY_CTX(rebind->run(), "bind host to its credential");
        continue;
      }
      StoreOutcome o{StoreOutcome::Kind::forbidden, 0,
                     fmt::format("host {} is bound to another credential than \"{}\", the one "
                                 "this request's token belongs to: a host name keeps the "
                                 "credential that first wrote it",
                                 quote_id(host), credential)};
      o.bound_credential = find->column_text(0);
      return std::optional<StoreOutcome>(std::move(o));
    }
    auto bind = use(Stmt::host_bind);
    bind->bind(1, host).bind(2, credential);
    TALLY_TRY_CTX(bind->run(), "bind host to its credential");
  }
  return std::optional<StoreOutcome>();
}

Result<std::optional<Link>> BatchStore::Impl::find_link(Stmt which, std::int64_t agent) {
  auto find = use(which);
  find->bind(1, agent);
  auto row = find->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<Link>();
  return std::optional<Link>(Link{find->column_u64(0), std::string(find->column_text(1))});
}

// Records that `agent` continues p.agent_id, or says why not: the outcome
// comes back only when the claim is refused.
Result<std::optional<StoreOutcome>> BatchStore::Impl::add_succession(
    std::int64_t agent, const BatchRequest& r, const Predecessor& p,
    const std::optional<std::string>& credential) {
  using Kind = StoreOutcome::Kind;
  auto earlier = find_link(Stmt::predecessor_of, agent);
  if (!earlier.ok()) return earlier.error();
  if (*earlier) {
    return std::optional<StoreOutcome>(StoreOutcome{
        Kind::conflict, 0,
        fmt::format("gap.predecessor: agent {} named its predecessor, {}, in seq {} already",
                    quote_id(r.agent_id), quote_id((*earlier)->agent_id), (*earlier)->seq)});
  }
  // A predecessor the collector never heard of is added, bound to this
  // credential, so that its report shows the loss.
  auto predecessor = find_or_add_agent(p.agent_id, r.host, credential);
  if (!predecessor.ok()) return predecessor.error();
  if (refuses(*predecessor, credential)) {
    return std::optional<StoreOutcome>(forbidden(
        fmt::format("gap.predecessor.agent_id: agent {} is bound to another credential than "
                    "\"{}\", this request's; only an agent of its own credential may declare "
                    "its data lost",
                    quote_id(p.agent_id), *credential),
        *predecessor));
  }
  auto successor = find_link(Stmt::successor_of, predecessor->key);
  if (!successor.ok()) return successor.error();
  if (*successor) {
    return std::optional<StoreOutcome>(StoreOutcome{
        Kind::conflict, 0,
        fmt::format("gap.predecessor.agent_id: agent {} has a successor already, {} (its seq {})",
                    quote_id(p.agent_id), quote_id((*successor)->agent_id), (*successor)->seq)});
  }
  auto insert = use(Stmt::succession_insert);
  insert->bind(1, agent).bind(2, r.seq).bind(3, predecessor->key).bind(4, p.last_seq);
  TALLY_TRY_CTX(insert->run(), "record the predecessor");
  return std::optional<StoreOutcome>();
}

Result<std::optional<BatchRow>> BatchStore::Impl::find_batch(std::int64_t agent,
                                                             std::uint64_t seq) {
  auto find = use(Stmt::batch_find);
  find->bind(1, agent).bind(2, seq);
  auto row = find->step();
  if (!row.ok()) return row.error();
  if (!*row) return std::optional<BatchRow>();
  return std::optional<BatchRow>(BatchRow{find->column_u64(0), find->column_u64(1)});
}

Result<bool> BatchStore::Impl::has_gap(std::int64_t agent, std::uint64_t seq) {
  auto find = use(Stmt::gap_find);
  find->bind(1, agent).bind(2, seq);
  return find->step();
}

// Adds seq to the agent's received ranges, merging with the neighbours so
// the ranges stay disjoint and maximal: a contiguous run of batches stays
// one row however long it gets.
Status BatchStore::Impl::mark_received(std::int64_t agent, std::uint64_t seq) {
  std::optional<std::pair<std::uint64_t, std::uint64_t>> below;
  {
    auto find = use(Stmt::range_below);
    find->bind(1, agent).bind(2, seq);
    auto row = find->step();
    if (!row.ok()) return row.error();
    if (*row) below.emplace(find->column_u64(0), find->column_u64(1));
  }
  if (below && below->second >= seq) return ok_status();  // already in a range
  std::optional<std::uint64_t> above_last;
  {
    auto find = use(Stmt::range_starting_at);
    find->bind(1, agent).bind(2, seq + 1);
    auto row = find->step();
    if (!row.ok()) return row.error();
    if (*row) above_last = find->column_u64(0);
  }
  bool joins_below = below && below->second + 1 == seq;
  if (above_last) {
    auto del = use(Stmt::range_delete);
    del->bind(1, agent).bind(2, seq + 1);
    TALLY_TRY_CTX(del->run(), "merge received ranges");
  }
  std::uint64_t last = above_last.value_or(seq);
  if (joins_below) {
    auto extend = use(Stmt::range_set_last);
    extend->bind(1, agent).bind(2, below->first).bind(3, last);
    return extend->run();
  }
  auto insert = use(Stmt::range_insert);
  insert->bind(1, agent).bind(2, seq).bind(3, last);
  return insert->run();
}

// Records the names sample s carries as its process's current ones and
// returns their names row.
Result<std::int64_t> BatchStore::Impl::record_names(std::int64_t agent, const StoredSample& s) {
  const std::uint64_t refresh_before = now_ns - std::min(now_ns, names_max_age_ns / 2);
  {
    auto current = use(Stmt::names_current);
    current->bind(1, agent).bind(2, std::uint64_t{*s.pid}).bind(3, *s.start_time_ns);
    auto row = current->step();
    if (!row.ok()) return row.error();
    if (*row && current->column_text(2) == s.names && current->column_u64(1) >= refresh_before) {
      return current->column_int(0);
    }
  }
  auto id = names.find_or_add(agent, s);
  if (!id.ok()) return id.error();
  auto upsert = use(Stmt::names_upsert);
  upsert->bind(1, agent).bind(2, std::uint64_t{*s.pid}).bind(3, *s.start_time_ns).bind(4, *id);
  upsert->bind(5, now_ns).bind(6, refresh_before);
  Status recorded = upsert->run();
  if (!recorded.ok()) return recorded.error();
  return *id;
}

// Records the names the piece carries and looks up those it left out.
// ids[i] is the names row of process sample i; an outcome comes back only
// when some samples refer to names this store does not hold.
Result<std::optional<StoreOutcome>> BatchStore::Impl::resolve_names(
    std::int64_t agent, const SamplesPiece& piece, std::vector<std::optional<std::int64_t>>& ids) {
  ids.assign(piece.samples.size(), std::nullopt);
  StoreOutcome unknown(StoreOutcome::Kind::unknown_processes);
  for (std::size_t i = 0; i < piece.samples.size(); ++i) {
    const StoredSample& s = piece.samples[i];
    if (!s.pid) continue;
    if (!s.names.empty()) {
      auto id = record_names(agent, s);
      if (!id.ok()) return id.error().context(fmt::format("record names of sample {}", s.index));
      ids[i] = *id;
      continue;
    }
    auto find = use(Stmt::names_find);
    find->bind(1, agent).bind(2, std::uint64_t{*s.pid}).bind(3, *s.start_time_ns);
    auto row = find->step();
    if (!row.ok()) return row.error().context(fmt::format("names of sample {}", s.index));
    if (!*row) {
      if (unknown.unknown.size() < kUnknownListed) {
        unknown.unknown.push_back({*s.pid, *s.start_time_ns});
      }
      ++unknown.unknown_count;
      continue;
    }
    ids[i] = find->column_int(0);
  }
  if (unknown.unknown_count > 0) {
    unknown.why = fmt::format(
        "{} samples leave out the names of processes this collector holds no names for, "
        "pid {} start_time_ns {} first; send the names again",
        unknown.unknown_count, unknown.unknown[0].pid, unknown.unknown[0].start_time_ns);
    return std::optional<StoreOutcome>(std::move(unknown));
  }
  // A process that exited appears no more: its names are done with.
  for (const StoredSample& s : piece.samples) {
    if (!s.pid || !s.exited) continue;
    auto del = use(Stmt::names_delete);
    del->bind(1, agent).bind(2, std::uint64_t{*s.pid}).bind(3, *s.start_time_ns);
    TALLY_TRY_CTX(del->run(), fmt::format("forget names of sample {}", s.index));
  }
  return std::optional<StoreOutcome>();
}

// Which of the piece's samples an earlier piece (or the whole batch) of
// the same seq stored: pieces may overlap however the agent split them.
Result<std::vector<bool>> BatchStore::Impl::stored_already(std::int64_t agent, std::uint64_t seq,
                                                           const SamplesPiece& piece) {
  std::vector<bool> stored(piece.samples.size(), false);
  auto ranges = use(Stmt::chunk_ranges);
  ranges->bind(1, agent).bind(2, seq);
  Status read = ranges->each_row([&](sql::Statement& row) {
    const std::uint64_t first = row.column_u64(0);
    const std::uint64_t end = first + row.column_u64(1);
    for (std::size_t i = 0; i < piece.samples.size(); ++i) {
      const std::uint64_t index = piece.samples[i].index;
      if (index >= first && index < end) stored[i] = true;
    }
  });
  if (!read.ok()) return read.error().context("read the batch's stored chunks");
  return stored;
}

Result<StoreOutcome> BatchStore::Impl::store_piece(std::int64_t agent, const BatchRequest& r,
                                                   const SamplesPiece& piece,
                                                   std::uint64_t& duplicates) {
  std::vector<std::optional<std::int64_t>> names_ids;
  auto unknown = resolve_names(agent, piece, names_ids);
  if (!unknown.ok()) return unknown.error();
  if (*unknown) return std::move(**unknown);
  auto gap = has_gap(agent, r.seq);
  if (!gap.ok()) return gap.error();
  if (*gap) {
    return StoreOutcome{StoreOutcome::Kind::conflict, 0,
                        fmt::format("seq {} was received as a gap record", r.seq)};
  }
  auto batch = find_batch(agent, r.seq);
  if (!batch.ok()) return batch.error();
  if (*batch && (*batch)->batch_samples != piece.batch_samples) {
    return StoreOutcome{StoreOutcome::Kind::conflict, 0,
                        fmt::format("seq {} was received with batch_samples {}, now {}", r.seq,
                                    (*batch)->batch_samples, piece.batch_samples)};
  }
  if (!*batch) {
    auto insert = use(Stmt::batch_insert);
    insert->bind(1, agent).bind(2, r.seq).bind(3, piece.batch_samples);
    TALLY_TRY_CTX(insert->run(), "add batch");
    TALLY_TRY_CTX(mark_received(agent, r.seq), "mark seq received");
  } else if ((*batch)->stored == (*batch)->batch_samples) {
    // Complete already: every sample of any piece is a duplicate.
    duplicates = piece.samples.size();
    return StoreOutcome{StoreOutcome::Kind::duplicate, 0, {}};
  }

  auto stored = stored_already(agent, r.seq, piece);
  if (!stored.ok()) return stored.error();
  auto added = chunks.write(agent, r.seq, piece.samples, names_ids, *stored);
  if (!added.ok()) return added.error();
  if (*added > 0) {
    auto update = use(Stmt::batch_add);
    update->bind(1, agent).bind(2, r.seq).bind(3, *added);
    TALLY_TRY_CTX(update->run(), "count stored samples");
  }
  duplicates = piece.samples.size() - *added;
  // An empty piece adds nothing but is new if it is the batch's first sight.
  bool nothing_new = *added == 0 && (!piece.samples.empty() || batch->has_value());
  return StoreOutcome{
      nothing_new ? StoreOutcome::Kind::duplicate : StoreOutcome::Kind::stored, *added, {}};
}

Result<StoreOutcome> BatchStore::Impl::store_gap(std::int64_t agent, const BatchRequest& r,
                                                 const GapRecord& gap,
                                                 const std::optional<std::string>& credential) {
  auto batch = find_batch(agent, r.seq);
  if (!batch.ok()) return batch.error();
  if (*batch) {
    return StoreOutcome{StoreOutcome::Kind::conflict, 0,
                        fmt::format("seq {} was received as a samples batch", r.seq)};
  }
  // The first record of a seq wins: a copy is a duplicate whatever it names.
  auto known = has_gap(agent, r.seq);
  if (!known.ok()) return known.error();
  if (*known) return StoreOutcome{StoreOutcome::Kind::duplicate, 0, {}};
  if (gap.predecessor) {
    auto refused = add_succession(agent, r, *gap.predecessor, credential);
    if (!refused.ok()) return refused.error();
    if (*refused) return std::move(**refused);
  }
  auto insert = use(Stmt::gap_insert);
  insert->bind(1, agent).bind(2, r.seq).bind(3, gap.first_seq).bind(4, gap.last_seq);
  insert->bind(5, gap.samples).bind(6, gap.reason).bind(7, gap.time_ns).bind(8, gap.detail);
  TALLY_TRY_CTX(insert->run(), "add gap record");
  TALLY_TRY_CTX(mark_received(agent, r.seq), "mark seq received");
  return StoreOutcome{StoreOutcome::Kind::stored, 0, {}};
}

// Its own transaction: a request rolled back (a 409) must not undo it.
Status BatchStore::Impl::prune_names() {
  auto txn = sql::Transaction::begin(db);
  if (!txn.ok()) return txn.error().context("forget old process names");
  auto prune = use(Stmt::names_prune);
  prune->bind(1, now_ns - std::min(now_ns, names_max_age_ns));
  TALLY_TRY_CTX(prune->run(), "forget old process names");
  const auto forgotten = prune->changes();
  TALLY_TRY_CTX(txn->commit(), "forget old process names");
  if (forgotten > 0) {
    log::info("forgot the names of {} processes not sent again for {}", forgotten,
              human_duration_ns(names_max_age_ns));
  }
  next_prune_ns =
      now_ns + std::min(kNamesPruneEveryNs, std::max<std::uint64_t>(names_max_age_ns / 4, 1));
  return ok_status();
}

Result<StoreOutcome> BatchStore::store(const BatchRequest& r,
                                       const std::optional<std::string>& credential) {
  std::string what = fmt::format("store agent {} seq {}", r.agent_id, r.seq);
  impl_->now_ns = impl_->clock();
  if (impl_->now_ns >= impl_->next_prune_ns) {
    // A failure here is the database failing: the request would fail too.
    TALLY_TRY_CTX(impl_->prune_names(), what);
  }
  auto txn = sql::Transaction::begin(impl_->db);
  if (!txn.ok()) return txn.error().context(what);
  // The chunk writer's memory of what it wrote follows the transaction.
  struct Settle {
    ChunkWriter& chunks;
    bool committed = false;
    ~Settle() { committed ? chunks.committed() : chunks.rolled_back(); }
  } settle{impl_->chunks};
  auto found = impl_->find_or_add_agent(r.agent_id, r.host, credential);
  if (!found.ok()) return found.error().context(what);
  if (refuses(*found, credential)) {
    return forbidden(fmt::format("agent_id {} is bound to another credential than \"{}\", the "
                                 "one this request's token belongs to: an agent keeps the "
                                 "credential it first wrote with",
                                 quote_id(r.agent_id), *credential),
                     *found);  // rolled back: nothing changes for that agent
  }
  if (credential) {
    auto refused = impl_->check_hosts(r, *credential);
    if (!refused.ok()) return refused.error().context(what);
    if (*refused) return std::move(**refused);
  }
  const std::int64_t agent = found->key;

  std::uint64_t duplicates = 0;
  auto outcome = std::visit(
      [&](const auto& body) -> Result<StoreOutcome> {
        if constexpr (std::is_same_v<std::decay_t<decltype(body)>, SamplesPiece>) {
          return impl_->store_piece(agent, r, body, duplicates);
        } else {
          return impl_->store_gap(agent, r, body, credential);
        }
      },
      r.body);
  if (!outcome.ok()) return outcome.error().context(what);
  if (outcome->kind == StoreOutcome::Kind::conflict ||
      outcome->kind == StoreOutcome::Kind::forbidden ||
      outcome->kind == StoreOutcome::Kind::unknown_processes) {
    return outcome;  // rolled back
  }

  {
    auto update = impl_->use(Stmt::agent_update);
    update->bind(1, agent).bind(2, r.host).bind(3, r.seq).bind(4, duplicates);
    update->bind(5, outcome->stored).bind(6, impl_->now_ns).bind(7, r.software);
    Status updated = update->run();
    if (!updated.ok()) return updated.error().context(what + ": update agent");
  }
  TALLY_TRY_CTX(txn->commit(), what);
  settle.committed = true;
  return outcome;
}

Result<bool> BatchStore::housekeep() { return impl_->housekeeper->step(impl_->clock()); }

const HousekeepingCounts& BatchStore::housekeeping() const { return impl_->housekeeper->counts(); }

}  // namespace tally::collector
