// The outbox: a durable, size-capped queue of sample batches between the
// sampler and the shippers of one agent.
//
// Life of a sample: append() stores it (durable on return) and stages it;
// when a BatchLimits limit is reached the staged samples are formed into
// immutable batches numbered by a per-agent seq; each batch is delivered to
// every configured sink independently (next_ready / ack / fail / reject) and
// removed once every sink is done with it.
//
// Nothing is lost silently: samples removed to respect the cap, refused by a
// server, or refused by the disk are declared by gap batches (Batch::gap) in
// the same seq sequence, delivered to exactly the sinks that lost them.
//
// Errors: every operation returns a Result/Status whose message names the
// file and carries SQLite's message. A failed operation changes nothing on
// disk (its transaction is rolled back) and can simply be retried.
//
// Thread safety: all methods may be called concurrently (typically one
// sampler thread appending and one shipper thread per sink). They serialise on
// one internal mutex around one SQLite connection. Why not a connection per
// thread: SQLite admits one writer at a time anyway, so separate connections
// would only turn waiting on a mutex into SQLITE_BUSY retries with sleeps
// (busy_timeout backs off in milliseconds), and the in-memory totals (last
// seq, staged and stored bytes, uncounted failed samples) would need their own
// synchronisation. Every operation is one short transaction; the longest is an
// append's fsync, which a shipper waits out once per interval at most.
//
// Time is always passed in (ns since the Unix epoch) so behaviour is testable
// without sleeping.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tally/queue/batch.h"
#include "tally/queue/options.h"
#include "tally/queue/stats.h"
#include "tally/result.h"

namespace tally::queue {

class OutboxCore;

struct AppendResult {
  std::uint32_t batches_formed = 0;  // data and gap batches formed by this call
  // seq range of the data batches formed by this call; 0/0 when the samples
  // were only staged. It can include samples staged by earlier calls.
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
};

// Entries that records refer to by key instead of repeating them: the names
// of a process, say, in every sample of it (compact samples,
// userspace/samples/compact_records.h). The outbox stores them in the
// transaction of the append that brings them, hands them out by key, and
// deletes an entry once it is retired and no stored batch can refer to it.
struct DictionaryUpdate {
  // Consecutive keys from first_unused_dictionary_key() on (or above it).
  std::vector<std::pair<std::uint64_t, std::string>> added;
  std::vector<std::uint64_t> retired;  // no later append refers to these
};

class Outbox {
 public:
  // Opens or creates the outbox at options.path (creating its directory,
  // mode 0700; the files are created 0600).
  //
  // First of all it locks the lock file beside it (outbox_lock.h, held until
  // the Outbox is destroyed): if another process has the outbox open, open
  // fails with a message naming the outbox and that process's pid, and
  // nothing is changed.
  //
  // A file that is not a database, fails PRAGMA quick_check, or has a schema
  // newer than this code is renamed aside (with its -wal/-shm) to
  // "<path>.corrupt-<YYYYmmddTHHMMSSZ>[.N]", logged with the reason, counted
  // (OutboxStats::quarantine_events), and a new outbox is created in its place.
  // Fails, without touching the file, on permission or I/O errors.
  // A new outbox gets a random agent id (UUID v4) that it keeps for life.
  //
  // If the lock file's witness names another agent id than the file holds
  // (the database was deleted or replaced while nobody had it open), a gap
  // record of reason outbox_lost naming that predecessor and its last seq is
  // formed first, for every sink.
  //
  // Opening needs no free space: on a full disk the outbox opens and ships
  // what it holds (see OutboxStats::disk_full).
  static Result<std::unique_ptr<Outbox>> open(const OutboxOptions& options, std::uint64_t now_ns);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Stores one interval's samples in one transaction (WAL, synchronous=FULL):
  // on success they survive SIGKILL and power loss. Each sample is an opaque
  // record without '\n' (rejected otherwise). Forms batches if a limit is
  // reached. If the stored bytes (dictionary entries included) would pass
  // cap_bytes, or the database's used pages what its filesystem holds
  // (OutboxStats::effective_cap_bytes), first the oldest dead letters and
  // then the oldest data batches are removed and declared by gap records
  // (reason cap) for the sinks that had not acked them.
  // On failure nothing is stored, the samples are counted as lost, and the
  // next successful append first forms an append_failed gap batch for them.
  // `dictionary` is stored in the same transaction, or not at all.
  Result<AppendResult> append(std::span<const std::string> samples, std::uint64_t now_ns,
                              const DictionaryUpdate& dictionary = {});

  // The value stored for a dictionary key; nullopt if there is none (never
  // added, or deleted once nothing could refer to it).
  Result<std::optional<std::string>> dictionary_entry(std::uint64_t key);

  // A key above every dictionary key stored. An outbox retires, when it is
  // opened, every entry an earlier writer left live: only records already
  // stored can refer to them, and the new writer starts from this key.
  std::uint64_t first_unused_dictionary_key() const;

  // Forms every staged sample into batches now, whatever its age (a flush,
  // a shutdown). Returns the number of batches formed.
  Result<int> form_all(std::uint64_t now_ns);

  // The lowest-seq batch that `sink` is not done with, or nullopt. Does not
  // change anything: the same batch is returned until ack/fail/reject. When
  // to ask is the sink's business (its backoff), not the outbox's.
  Result<std::optional<Batch>> next_ready(std::string_view sink);

  // `sink` has delivered batch `seq`. Acking a batch the sink is already done
  // with (acked, rejected, evicted) is a no-op. On a full disk the ack is
  // held in memory (next_ready skips the batch) and written with the next
  // write that succeeds; if the process dies first the batch is sent again,
  // which a server drops as a duplicate.
  Status ack(std::string_view sink, std::uint64_t seq);

  // A delivery attempt failed transiently: counts the attempt and stores the
  // error, for status. The batch stays next_ready; retries never stop while
  // it is in the outbox.
  Status fail(std::string_view sink, std::uint64_t seq, std::string_view error);

  // The server refused batch `seq` for good: its payload goes to the
  // dead-letter table (counted against the cap, discarded first when room is
  // needed), a gap batch (reason rejected, with status and message) is formed
  // for this sink only, and the sink is done with the batch. Rejecting a gap
  // batch dead-letters it without forming another gap. `readable`, if not
  // empty, is dead-lettered instead of the stored payload: the records as
  // people read them, when they were stored in a compact form.
  Status reject(std::string_view sink, std::uint64_t seq, int http_status, std::string_view message,
                std::uint64_t now_ns, std::string_view readable = {});

  // As reject(), for lines [first_index, first_index + count) of a data batch
  // only. The batch stays pending for the sink until it is acked.
  Status reject_samples(std::string_view sink, std::uint64_t seq, std::uint32_t first_index,
                        std::uint32_t count, int http_status, std::string_view message,
                        std::uint64_t now_ns, std::string_view readable = {});

  // Checks that the files at options.path are still the ones this outbox
  // writes (a few stat(2) calls) and deals with what someone else did to
  // them:
  //  - deleted or replaced (the open inode is intact): the data is copied
  //    from the open connection back into place (VACUUM INTO), and whatever
  //    was put at the path is moved aside to "<path>.foreign-<stamp>":
  //    nothing is lost;
  //  - truncated or overwritten in place: what the file held is lost. A new
  //    file is created that keeps the agent id, the seq counter and what
  //    each sink acknowledged, and declares for every sink the seqs it had
  //    not acknowledged (and the staged samples) by a gap record of reason
  //    outbox_lost; the damaged file is moved aside as "<path>.corrupt-*".
  // append() runs it first (unless it was called since the last append),
  // so a writer that appends every interval need not call it.
  // Returns true when the dictionary entries stored before are gone (the
  // file was recreated): a writer must name every entry afresh before its
  // next append (an append that refers to entries lost in its own check
  // fails and is counted, so nothing is stored that cannot be read).
  Result<bool> check_file(std::uint64_t now_ns);

  // One snapshot, a handful of indexed queries.
  Result<OutboxStats> stats(std::uint64_t now_ns);

  const std::string& agent_id() const { return agent_id_; }
  const std::filesystem::path& path() const;

  // Test seam: the next commit fails with the given SQLite result code (e.g.
  // SQLITE_FULL = 13) after doing all its work, and is rolled back.
  void fail_next_commit_for_testing(int sqlite_rc);

 private:
  explicit Outbox(std::unique_ptr<OutboxCore> core);

  mutable std::mutex mu_;
  std::unique_ptr<OutboxCore> core_;  // guarded by mu_
  std::string agent_id_;              // immutable after open
};

}  // namespace tally::queue
