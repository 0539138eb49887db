// The collector's one writer: stores a decoded batch request in a single
// transaction and says whether it added anything.
//
// Dedup is per sample: the identity of a sample is (agent_id, seq, index),
// so a piece stores only the samples no earlier piece or whole batch of the
// same seq stored, whatever the split. A gap record's identity is
// (agent_id, seq). Whether a request was a duplicate is decided inside the
// same transaction as the insert, so concurrent retries cannot both "store".
//
// Credentials: an agent_id is bound to the credential (the token file's
// name for the token, see token_auth.h) of the first request that used it,
// or of its first request after the collector started authenticating; so
// is each host name (a body's, and its samples', which the queries filter
// on). A request under an agent_id or host bound to another credential is
// refused as `forbidden` and changes nothing: no sample, gap record,
// process name, host or counter of that agent. Without authentication (no
// token file) nothing is bound or checked. An agent or host bound to a
// credential of Options::rebind_from is bound anew by its next request.
//
// Successions: a gap record may name a predecessor, the agent whose data
// this one continues after its outbox was lost. Accepted only when the
// predecessor is bound to the same credential, or to none (it is then
// bound to this one, and created if the collector never heard of it), so
// that no agent can declare another credential's data lost.
//
// Process names are stored once per (agent, process, names), not in every
// sample: a sample row refers to its names, and the QueryStore splices them
// back, so queries never see the difference. In protocol version 2 a sample
// may leave its names out to mean the process's current ones: every body's
// names are recorded as current, a duplicate's too, because the agent takes
// any 2xx to mean "the collector holds the names this body carried". Current
// names not recorded again for names_max_age are forgotten (checked about
// hourly): an agent whose process outlived that is asked, with a 409, to
// send its names again.
//
// Thread safety: none; the server calls it from one thread only (the writer
// thread). Why one writer: SQLite admits one write transaction at a time
// anyway; a single connection with statements prepared once never meets
// SQLITE_BUSY, needs no retry loop, and keeps per-request cost to the
// inserts and one commit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collector/batch_request.h"
#include "collector/housekeeper.h"
#include "collector/store_schema.h"
#include "tally/result.h"

namespace tally::collector {

struct StoreOutcome {
  enum class Kind {
    stored,     // at least one new sample, or a new gap record / empty batch
    duplicate,  // nothing new: every sample (or the gap record) was there
    conflict,   // the seq is known with different content (see `why`)
    forbidden,  // the agent (or the named predecessor) belongs to another credential
    // Samples refer to process names this store does not hold (a new
    // database, or names sent to another collector): nothing was stored.
    unknown_processes,
  };
  StoreOutcome(Kind k = Kind::stored, std::uint64_t n = 0, std::string reason = {})
      : kind(k), stored(n), why(std::move(reason)) {}

  struct Process {
    std::uint32_t pid;
    std::uint64_t start_time_ns;
  };
  Kind kind;
  std::uint64_t stored;          // samples added
  std::string why;               // conflict, forbidden, unknown_processes
  std::vector<Process> unknown;  // unknown_processes: the first few
  std::uint64_t unknown_count = 0;
  // forbidden: the credential the agent is bound to. For the collector's
  // log only: a response never names another client's credential.
  std::string bound_credential;
};

class BatchStore {
 public:
  struct Options {
    std::string path;
    Durability durability = Durability::full;
    std::uint64_t max_page_count = 0;  // 0: no limit (test seam, see store_schema.h)
    // How long a process's names are kept after they were last recorded.
    // Recorded again when sent again, at most once per half of this.
    std::uint64_t names_max_age_ns = 7ull * 24 * 3600 * 1'000'000'000;
    // Wall clock, ns since the Unix epoch; empty: the system's (test seam).
    std::function<std::uint64_t()> clock;
    // Credentials whose agents and hosts move to the credential of their
    // next request (--rebind-from): how a fleet that shared one token moves
    // to a token per agent.
    std::vector<std::string> rebind_from;
    Retention retention;
  };

  // Opens or creates the database and prepares every statement.
  static Result<std::unique_ptr<BatchStore>> open(const Options& options);
  ~BatchStore();

  // One transaction: rolled back entirely on any error, so a failed request
  // leaves no trace and its retry starts clean. Errors are database errors
  // (disk full, I/O): the caller answers 503. `credential` is the name of
  // the credential the request authenticated with; nullopt when the
  // collector authenticates nobody.
  Result<StoreOutcome> store(const BatchRequest& request,
                             const std::optional<std::string>& credential = std::nullopt);

  // One bounded step of rollups and retention (housekeeper.h), in its own
  // transaction; true when more is waiting. The server runs it between
  // batches, on the writer thread.
  Result<bool> housekeep();
  const HousekeepingCounts& housekeeping() const;

 private:
  struct Impl;
  explicit BatchStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
