// The outbox logic on one SQLite connection, single-threaded (Outbox adds
// the mutex). Split by job over outbox_open.cc, outbox_append.cc,
// outbox_evict.cc, outbox_delivery.cc and outbox_stats.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "blob_codec.h"
#include "tally/sqlite.h"
#include "tally/log.h"
#include "state.h"
#include "statements.h"
#include "tally/queue/outbox.h"

namespace tally::queue {

class OutboxCore {
 public:
  static Result<std::unique_ptr<OutboxCore>> open(const OutboxOptions& options,
                                                  std::uint64_t now_ns);

  Result<AppendResult> append(std::span<const std::string> samples, std::uint64_t now_ns,
                              const DictionaryUpdate& dictionary);
  Result<std::optional<std::string>> dictionary_entry(std::uint64_t key);
  std::uint64_t first_unused_dictionary_key() const { return first_unused_key_; }
  Result<int> form_due(std::uint64_t now_ns);
  Result<int> form_all(std::uint64_t now_ns);
  Result<std::optional<Batch>> next_ready(std::string_view sink, std::uint64_t now_ns);
  Result<std::optional<std::uint64_t>> next_attempt_time(std::string_view sink);
  Status ack(std::string_view sink, std::uint64_t seq);
  Status fail(std::string_view sink, std::uint64_t seq, std::uint64_t next_attempt_ns,
              std::string_view error);
  Status reject(std::string_view sink, std::uint64_t seq, int http_status,
                std::string_view message, std::uint64_t now_ns, std::string_view readable);
  Status reject_samples(std::string_view sink, std::uint64_t seq, std::uint32_t first_index,
                        std::uint32_t count, int http_status, std::string_view message,
                        std::uint64_t now_ns, std::string_view readable);
  Result<OutboxStats> stats(std::uint64_t now_ns);

  const std::string& agent_id() const { return agent_id_; }
  sql::Database& db() { return db_; }

 private:
  explicit OutboxCore(OutboxOptions options)
      : options_(std::move(options)), codec_(options_.compress) {}

  // --- open (outbox_open.cc)
  Status configure_connection();
  Status initialise(bool quarantined, std::uint64_t now_ns);
  Status reconcile_sinks(std::uint64_t now_ns);
  Status load_state();
  // At open: entries left live by an earlier writer are retired.
  Status retire_live_entries();

  // Runs body(next) in one transaction on a copy of state_, writes the
  // counters that changed, commits, and only then adopts the copy.
  //
  // full: fsynced at commit (what append promises). lazy: written to the WAL
  // without an fsync, for changes whose loss in a power cut is harmless: an
  // ack or a retry time that reverts only makes a batch go out again, and
  // every server drops it by (agent id, seq). WAL frames are ordered, so the
  // next full commit makes the lazy ones before it durable too; an append
  // never depends on them. This spares one fsync per batch and sink.
  enum class Durability { full, lazy };
  template <typename Body>
  auto transact(Body&& body, Durability durability = Durability::full)
      -> decltype(body(std::declval<State&>()));
  Status persist_counters(const State& before, State& after);

  // --- forming batches (outbox_append.cc)
  // when_due: by the batch limits and age; now: everything staged (a flush).
  enum class Forming { when_due, now };
  // Stages `incoming` (may be empty) and forms the batches that are due.
  Status stage_and_form(State& next, std::span<const std::string> incoming, std::uint64_t now_ns,
                        AppendResult& out, Forming forming = Forming::when_due);
  Result<int> form_staged(std::uint64_t now_ns, Forming forming);
  bool age_due(const State& state, std::uint64_t now_ns) const;
  // Gives the batch the next seq and a delivery row for each of `sink_ids`.
  Result<std::uint64_t> insert_batch(State& next, Batch::Kind kind, std::string_view payload,
                                     std::uint32_t sample_count, std::uint64_t now_ns,
                                     std::span<const std::int64_t> sink_ids);
  Result<std::uint64_t> insert_gap(State& next, const GapRecord& gap,
                                   std::span<const std::int64_t> sink_ids);
  std::vector<std::int64_t> all_sink_ids() const;

  // --- the dictionary (outbox_dictionary.cc)
  // Adds and retires entries; retired ones are settled at once if nothing
  // is left staged.
  Status add_entries(State& next, const DictionaryUpdate& dictionary);
  // Staging is empty: entries retired while records were staged now know
  // their last batch.
  Status settle_entries(State& next);
  // Deletes retired entries no stored batch can refer to.
  Status prune_entries(State& next);

  // --- the cap (outbox_evict.cc)
  // Removes dead letters, then the oldest data batches, until `incoming`
  // more bytes fit, and forms the gap records for what was removed.
  Status make_room(State& next, std::uint64_t incoming, std::uint64_t now_ns, AppendResult& out);

  // --- delivery (outbox_delivery.cc)
  Result<const SinkState*> find_sink(std::string_view name) const;
  // Deletes batch `seq` if no sink has it pending any more.
  Status release_if_done(State& next, std::uint64_t seq);
  struct StoredBatch {
    Batch::Kind kind = Batch::Kind::samples;
    std::uint32_t sample_count = 0;
    std::string payload;
  };
  // Batch `seq`, which must be pending for `sink`.
  Result<StoredBatch> pending_batch(const SinkState& sink, std::uint64_t seq);
  Status insert_dead_letter(State& next, const SinkState& sink, std::uint64_t seq,
                            std::uint32_t first_index, std::uint32_t count, int http_status,
                            std::string_view message, std::uint64_t now_ns,
                            std::string_view payload);

  OutboxOptions options_;
  sql::Database db_;          // declared before stmts_: statements point at it
  Statements stmts_;
  BlobCodec codec_;  // compresses payloads on the way in, expands them on the way out
  State state_;
  std::string agent_id_;
  // Samples refused by failed appends that no gap record declares yet: the
  // disk refused them, so only memory can hold the count.
  std::uint64_t unrecorded_lost_ = 0;
  std::uint64_t quarantined_files_ = 0;  // counted at open
  std::uint64_t first_unused_key_ = 1;   // dictionary keys: max stored + 1 at open
};

template <typename Body>
auto OutboxCore::transact(Body&& body, Durability durability)
    -> decltype(body(std::declval<State&>())) {
  // The connection's setting is FULL; a lazy transaction lowers it for its
  // own commit only.
  struct LazyCommit {
    sql::Database* db = nullptr;
    ~LazyCommit() {
      if (!db) return;
      if (auto restored = db->exec("PRAGMA synchronous = FULL"); !restored) {
        // Appends would no longer be durable on return: say so loudly.
        log::error("outbox: restore synchronous=FULL: {}", restored.error().message());
      }
    }
  } lazy_commit;
  if (durability == Durability::lazy) {
    if (auto set = db_.exec("PRAGMA synchronous = NORMAL"); !set) return set.error();
    lazy_commit.db = &db_;
  }
  auto txn = sql::Transaction::begin(db_);
  if (!txn) return txn.error();
  State next = state_;
  next.deleted_batches = false;
  auto result = body(next);
  if (!result) return result;  // txn's destructor rolls back
  if (next.deleted_batches && next.dict_settled > 0) {
    if (auto pruned = prune_entries(next); !pruned) return pruned.error();
  }
  if (auto persisted = persist_counters(state_, next); !persisted) return persisted.error();
  if (auto committed = txn->commit(); !committed) return committed.error();
  state_ = std::move(next);
  return result;
}

}  // namespace tally::queue
