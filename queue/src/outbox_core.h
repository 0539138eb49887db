// The outbox logic on one SQLite connection, single-threaded (Outbox adds
// the mutex). Split by job over outbox_open.cc, outbox_append.cc,
// outbox_evict.cc, outbox_delivery.cc, outbox_stats.cc, outbox_space.cc
// (checkpoints, the effective cap, a full disk) and outbox_recover.cc (the
// file changed under us).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <map>
#include <set>

#include "batch_plan.h"
#include "blob_codec.h"
#include "file_stamp.h"
#include "gap.h"
#include "outbox_lock.h"
#include "quarantine.h"
#include "space_plan.h"
#include "state.h"
#include "statements.h"
#include "tally/log.h"
#include "tally/queue/outbox.h"
#include "tally/sqlite.h"

namespace tally::queue {

// SQLite's default page size, which the outbox keeps (configure_connection).
inline constexpr std::uint64_t kPageBytes = 4096;

class OutboxCore {
 public:
  static Result<std::unique_ptr<OutboxCore>> open(const OutboxOptions& options,
                                                  std::uint64_t now_ns);
  ~OutboxCore();
  OutboxCore(const OutboxCore&) = delete;
  OutboxCore& operator=(const OutboxCore&) = delete;

  Result<AppendResult> append(std::span<const std::string> samples, std::uint64_t now_ns,
                              const DictionaryUpdate& dictionary);
  Result<std::optional<std::string>> dictionary_entry(std::uint64_t key);
  std::uint64_t first_unused_dictionary_key() const { return first_unused_key_; }
  Result<int> form_all(std::uint64_t now_ns);
  Result<std::optional<Batch>> next_ready(std::string_view sink);
  Status ack(std::string_view sink, std::uint64_t seq);
  Status fail(std::string_view sink, std::uint64_t seq, std::string_view error);
  Status reject(std::string_view sink, std::uint64_t seq, int http_status, std::string_view message,
                std::uint64_t now_ns, std::string_view readable);
  Status reject_samples(std::string_view sink, std::uint64_t seq, std::uint32_t first_index,
                        std::uint32_t count, int http_status, std::string_view message,
                        std::uint64_t now_ns, std::string_view readable);
  Result<OutboxStats> stats(std::uint64_t now_ns);
  Result<bool> check_file(std::uint64_t now_ns);

  const std::string& agent_id() const { return agent_id_; }
  const std::filesystem::path& path() const { return options_.path; }
  sql::Database& db() { return db_; }

 private:
  explicit OutboxCore(OutboxOptions options)
      : options_(std::move(options)), codec_(options_.compress) {}

  // --- open (outbox_open.cc)
  // What an attach starts from: a file as found at open, the same data
  // copied back into place (a recovery), or a new file that carries on the
  // seq space of a lost one (Inherited).
  struct Inherited {
    std::array<std::uint64_t, kCounterCount> counters{};
    std::vector<SinkState> sinks;
  };
  enum class Attach { open, recovered, recreated };
  // Opens the file at the path, sets the connection up and loads the
  // state; `inherited` is for Attach::recreated only.
  Status attach(Attach how, std::uint64_t now_ns, const Inherited* inherited = nullptr);
  Status attach_steps(Attach how, std::uint64_t now_ns, const Inherited* inherited);
  Status configure_connection();
  Status initialise(bool quarantined, std::uint64_t now_ns, const Inherited* inherited);
  Status reconcile_sinks(std::uint64_t now_ns);
  Status load_state();
  // At open: entries left live by an earlier writer are retired. On a full
  // disk this waits for the first write that succeeds (retire_pending_).
  Status retire_live_entries();
  Status retire_entries_left_live(State& next);
  // At open: the witness names another agent, or a later seq, than the file
  // holds: declare what was lost (outbox_recover.cc).
  Status declare_lost_predecessor(std::uint64_t now_ns);
  // The stats memory holds, without a query.
  void fill_state_stats(OutboxStats& out) const;
  // The file holds agent_id_ (it was not just made up by initialise).
  bool identity_stored();
  // Guards every operation that needs the connection.
  Status usable() const;

  // --- space (outbox_space.cc)
  // Re-reads the filesystem's size and applies the plan (the WAL limit, on
  // the connection when it changed or the connection is new). At open, on a
  // write that failed for lack of space, and with stats(): a filesystem's
  // size changes only when it is resized, not per append.
  void refresh_space(bool new_connection = false);
  // Called after each commit with the WAL's frame count (sqlite3_wal_hook).
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int frames);
  // After a commit: records the witness, checkpoints a WAL past its limit,
  // and writes acks held in memory.
  void after_commit();
  // After a failed write: a full disk is a state (OutboxStats::disk_full).
  void after_failure();
  // Checkpoints the WAL into the database file if that file is still ours
  // (otherwise leaves it for check_file) and stamps the file again.
  void checkpoint();
  void record_witness();
  // Acks kept in memory because the disk was full, written now if it can.
  void save_held_acks();

  // --- the file changed under us (outbox_recover.cc)
  // Copies the data from the open connection back to the path.
  Status recover_by_copy(FileChange change, std::uint64_t now_ns);
  // The copy recover_by_copy() made is this outbox and is sound.
  Status check_copy(const std::filesystem::path& copy) const;
  // Replaces the lost file by a new one with the same agent id and seqs,
  // declaring the loss.
  Status recreate(FileChange change, std::uint64_t now_ns);
  // Closes the connection without checkpointing: its database file may no
  // longer be ours, and a checkpoint would write into it.
  void detach();

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
  // One staged row: `samples` records joined by '\n', dated created_ns.
  Status insert_staged(std::string_view records, std::uint64_t samples, std::uint64_t created_ns);
  // Every staged row, oldest first, as chunks of views into blobs.
  Status read_staged(std::deque<std::string>& blobs, std::vector<StagedChunk>& chunks);
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
  // make_room()'s steps: the oldest dead letter goes, or else the oldest
  // data batch's deliveries (the batch goes once released).
  Status discard_oldest_dead_letter(State& next);
  Result<EvictedBatch> evict_oldest_batch(const State& next, std::uint64_t incoming);
  // On a filesystem smaller than the cap: would `incoming` bytes take the
  // database's used pages past the effective cap?
  Result<bool> over_file_budget(std::uint64_t incoming);

  // --- delivery (outbox_delivery.cc)
  Result<const SinkState*> find_sink(std::string_view name) const;
  // The batch of a delivery_next_ready row.
  Result<std::optional<Batch>> read_ready(sql::Statement& query);
  // Removes the delivery of `seq` to the sink and deletes the batch if no
  // sink has it pending any more.
  Status record_ack(State& next, std::int64_t sink_id, std::uint64_t seq);
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
  OutboxLock lock_;   // held from before the database is touched until after it closes
  sql::Database db_;  // declared before stmts_: statements point at it
  Statements stmts_;
  BlobCodec codec_;  // compresses payloads on the way in, expands them on the way out
  State state_;
  std::string agent_id_;
  // Samples refused by failed appends that no gap record declares yet: the
  // disk refused them, so only memory can hold the count.
  std::uint64_t unrecorded_lost_ = 0;
  std::uint64_t quarantined_files_ = 0;  // counted at open
  std::uint64_t first_unused_key_ = 1;   // dictionary keys: max stored + 1 at open
  bool retire_pending_ = false;          // retire_live_entries() waits for disk space

  // Space (outbox_space.cc).
  SpacePlan space_;
  std::optional<FilesystemSpace> fs_;
  int wal_frames_ = 0;  // frames in the WAL after the last commit
  bool disk_full_ = false;
  bool exclusive_ = false;  // opened without a -shm (disk full at open)
  // Acks that could not be written (disk full), per sink id: next_ready
  // skips them, and they are written with the next write that succeeds.
  std::map<std::int64_t, std::set<std::uint64_t>> held_acks_;
  bool saving_held_acks_ = false;  // save_held_acks() runs a transaction of its own

  // The file (outbox_recover.cc).
  OutboxStamps stamps_;
  bool checked_since_append_ = false;  // the next append need not check again
  std::uint64_t file_changes_ = 0;
  std::string last_file_change_;
  std::string file_problem_;  // a recovery that failed, retried at each check
  std::string lock_problem_;  // the lock file was taken by another process
  std::optional<GapPredecessor> predecessor_;
  bool witness_frozen_ = false;  // a predecessor's loss is still undeclared: keep its witness
  // The change being dealt with, until it is: a recovery that fails half-way
  // (no space for the copy, say) goes on from its last step at the next check.
  std::optional<FileChange> unresolved_;
  enum class Recovery { start, copied, in_place, new_file };
  Recovery recovery_ = Recovery::start;
  // What the process knew when the file changed: what a new file carries
  // on, and what it declares lost.
  struct Loss {
    std::array<std::uint64_t, kCounterCount> counters{};
    std::uint64_t samples = 0;
    std::uint64_t staged_samples = 0;
    std::vector<SinkState> sinks;
  };
  Loss lost_;
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
  if (auto ready = usable(); !ready) return ready.error();
  db_.clear_last_error();
  auto result = [&]() -> decltype(body(std::declval<State&>())) {
    auto txn = sql::Transaction::begin(db_);
    if (!txn) return txn.error();
    State next = state_;
    next.deleted_batches = false;
    if (retire_pending_) {
      if (auto retired = retire_entries_left_live(next); !retired) return retired.error();
    }
    auto out = body(next);
    if (!out) return out;  // txn's destructor rolls back
    if (next.deleted_batches && next.dict_settled > 0) {
      if (auto pruned = prune_entries(next); !pruned) return pruned.error();
    }
    if (auto persisted = persist_counters(state_, next); !persisted) return persisted.error();
    if (auto committed = txn->commit(); !committed) return committed.error();
    state_ = std::move(next);
    retire_pending_ = false;
    return out;
  }();
  if (result) {
    after_commit();
  } else {
    after_failure();
  }
  return result;
}

}  // namespace tally::queue
