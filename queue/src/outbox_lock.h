// The lock file beside an outbox: one writer per outbox file, and a witness
// of that writer that outlives the database.
//
// Why a separate file: SQLite's own locks are per transaction, so two
// processes can both open an outbox and interleave writes under one agent
// id (colliding seqs). An flock(2) held for the life of the Outbox makes the
// second opener fail before it touches the database.
//
// Why it is hidden (".outbox.db.lock" beside "outbox.db"): it also records
// the writer's agent id, last seq and the samples it held, cheaply (one
// pwrite per change, no fsync). When the database is deleted or replaced
// while tallyd is stopped (`rm outbox.db*`), the next open finds the witness
// and declares what the old agent id lost instead of starting silently
// afresh; a name that "outbox.db*" matches would be deleted with the data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "tally/fd.h"
#include "tally/result.h"

namespace tally::queue {

// What the last writer of an outbox path recorded about itself.
struct Witness {
  std::string agent_id;
  std::uint64_t last_seq = 0;
  std::uint64_t samples = 0;  // samples it held (pending batches and staged)
  friend bool operator==(const Witness&, const Witness&) = default;
};

class OutboxLock {
 public:
  // "<dir>/.<name>.lock" for the outbox at db_path.
  static std::filesystem::path path_for(const std::filesystem::path& db_path);

  // Creates (mode 0600) and locks the lock file of db_path without waiting.
  // If another process holds it, fails with a message naming the outbox,
  // the lock file and the holder's pid (as the holder recorded it).
  static Result<OutboxLock> acquire(const std::filesystem::path& db_path);

  OutboxLock() = default;
  OutboxLock(OutboxLock&&) = default;
  OutboxLock& operator=(OutboxLock&&) = default;

  const std::filesystem::path& path() const { return path_; }
  // What the file held when it was acquired: the previous writer's record.
  const std::optional<Witness>& previous() const { return previous_; }
  // What record() wrote last (previous() until then).
  const Witness& recorded() const { return recorded_; }

  // Records `now` if it differs from what was recorded last. Best effort:
  // a witness that cannot be written only loses a declaration at a later
  // start, so a failure is logged once and not returned.
  void record(const Witness& now);

  // The lock file is still the one this lock holds. If it was deleted or
  // replaced, creates and locks a new one and records the witness again;
  // fails if another process holds the new file.
  Status check();

 private:
  Status write(const Witness& witness);

  std::filesystem::path db_path_;
  std::filesystem::path path_;
  int pid_ = 0;  // ours, as the file says
  UniqueFd fd_;
  std::optional<Witness> previous_;
  Witness recorded_;
  bool write_failed_ = false;  // logged once
};

}  // namespace tally::queue
