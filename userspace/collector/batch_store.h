// The collector's one writer: stores a decoded batch request in a single
// transaction and says whether it added anything.
//
// Dedup is per sample: the identity of a sample is (agent_id, seq, index),
// so a piece stores only the samples no earlier piece or whole batch of the
// same seq stored, whatever the split. A gap record's identity is
// (agent_id, seq). Whether a request was a duplicate is decided inside the
// same transaction as the insert, so concurrent retries cannot both "store".
//
// Thread safety: none; the server calls it from one thread only (the writer
// thread). Why one writer: SQLite admits one write transaction at a time
// anyway; a single connection with statements prepared once never meets
// SQLITE_BUSY, needs no retry loop, and keeps per-request cost to the
// inserts and one commit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "batch_request.h"
#include "store_schema.h"
#include "tally/result.h"

namespace tally::collector {

struct StoreOutcome {
  enum class Kind {
    stored,     // at least one new sample, or a new gap record / empty batch
    duplicate,  // nothing new: every sample (or the gap record) was there
    conflict,   // the seq is known with different content (see `why`)
  };
  Kind kind = Kind::stored;
  std::uint64_t stored = 0;  // samples added
  std::string why;           // conflict only
};

class BatchStore {
 public:
  struct Options {
    std::string path;
    Durability durability = Durability::full;
    std::uint64_t max_page_count = 0;  // 0: no limit (test seam, see store_schema.h)
  };

  // Opens or creates the database and prepares every statement.
  static Result<std::unique_ptr<BatchStore>> open(const Options& options);
  ~BatchStore();

  // One transaction: rolled back entirely on any error, so a failed request
  // leaves no trace and its retry starts clean. Errors are database errors
  // (disk full, I/O): the caller answers 503.
  Result<StoreOutcome> store(const BatchRequest& request);

 private:
  struct Impl;
  explicit BatchStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tally::collector
