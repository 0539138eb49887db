// The read side of the collector database: what GET /v1/agents,
// /v1/samples, /v1/top and /healthz report. Its own read-only connection,
// so queries run beside the writer (WAL) and never block ingestion.
//
// Every query is bounded: it fails once it has run for longer than the
// time limit (an interrupted SQLite statement, sqlite.org/c3ref/progress_handler.html),
// so one huge window cannot hold the query thread, nor a WAL snapshot that
// keeps the checkpointer from resetting the log. Answers are cut at a byte
// limit (and marked truncated): a sample's names can be a megabyte.
//
// Thread safety: none; the server calls it from one thread (the query
// thread, or the health thread for a QueryStore of its own).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collector/batch_request.h"
#include "collector/seq_ranges.h"
#include "collector/series_query.h"
#include "tally/result.h"

namespace tally::collector {

struct DeclaredLost {
  std::uint64_t seq = 0;  // the gap record's own seq (in declared_by's seq space)
  GapRecord gap;
  // Empty: the agent's own gap record. Otherwise the successor whose gap
  // record declared this range of the agent's seqs lost (its outbox was
  // lost); samples is then 0, the count being in the successor's record.
  std::string declared_by;
};

// One end of a succession, as seen from the other.
struct AgentLink {
  std::string agent_id;
  std::uint64_t seq = 0;       // the successor's gap record naming the predecessor
  std::uint64_t last_seq = 0;  // the predecessor's last seq, as the successor declared
};

struct PartialBatch {
  std::uint64_t seq = 0;
  std::uint64_t batch_samples = 0;
  std::uint64_t stored = 0;
};

struct AgentReport {
  std::string agent_id;
  std::string host;
  std::optional<std::string> credential;  // bound to; nullopt: not bound
  std::optional<AgentLink> predecessor;   // the agent this one continues
  std::optional<AgentLink> successor;     // the agent that continues this one
  std::uint64_t last_seq = 0;
  std::vector<SeqRange> missing;  // in [1, last_seq]: neither received nor declared lost
  // Its own gap records by seq, then ranges its successor declared lost.
  std::vector<DeclaredLost> declared_lost;
  std::vector<PartialBatch> partial;  // batches of which only some samples arrived
  std::uint64_t duplicates_rejected = 0;
  std::uint64_t last_seen_ns = 0;  // when its last request was stored; 0: before schema 6
  std::string software;            // its User-Agent
  std::uint64_t samples_stored = 0;
};

struct SampleQuery {
  std::optional<std::string> host;
  std::optional<std::uint32_t> pid;
  std::uint64_t from = 0;                     // ts_ns >= from
  std::uint64_t to = 9223372036854775807ULL;  // ts_ns < to
  std::uint64_t limit = 1000;
};

struct SampleRows {
  std::vector<std::string> json;  // sample objects as received, by ts_ns
  bool truncated = false;         // more rows matched than the limit, or too many bytes
};

struct TopQuery {
  std::optional<std::string> host;
  std::uint64_t from = 0;
  std::uint64_t to = 9223372036854775807ULL;
  std::uint64_t n = 10;
  GroupKind by = GroupKind::process;  // process, comm, cgroup or host
  // Whether from or to was given. By process, a window up to kRawTopNs,
  // or none at all, is summed from the raw samples, exactly; a longer one
  // from the rollups (series_query.h), like every grouping but process.
  bool window_given = false;
  static constexpr std::uint64_t kRawTopNs = 3600ull * 1'000'000'000;
};

struct TopEntry {
  std::string group;  // by comm, cgroup or host: its name
  std::string host;
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;
  std::string comm;          // from the process's latest sample in the window
  std::string cmdline;       // likewise
  std::uint64_t cpu_ns = 0;  // summed; 2^63-1 when the sum would pass it
};

struct TopRows {
  GroupKind by = GroupKind::process;
  SeriesSource source = SeriesSource::raw;
  std::vector<TopEntry> top;
  bool truncated = false;  // fewer than n because the answer passed the byte limit
};

struct QueryLimits {
  // How long one query may run; zero: no limit.
  std::chrono::milliseconds time{10000};
  // The sample and name text one answer may hold, about its size in JSON.
  std::uint64_t answer_bytes = 64u << 20;
};

class QueryStore {
 public:
  // Opens a read-only connection; the database must exist with the schema.
  static Result<std::unique_ptr<QueryStore>> open(const std::string& path, QueryLimits limits = {});
  ~QueryStore();

  // Every agent, by agent_id, from one snapshot.
  Result<std::vector<AgentReport>> agents();
  Result<SampleRows> samples(const SampleQuery& q);
  // Processes (or groups) by summed cpu_ns over [from, to), largest first.
  Result<TopRows> top(const TopQuery& q);
  Result<SeriesRows> series(const SeriesQuery& q);
  // A cheap read that fails if the database cannot be read.
  Status check();

 private:
  struct Impl;
  explicit QueryStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
