// When the outbox's file changes under it, and when the file found at open
// is not the one its last writer left.
//
// Deleted or replaced: the connection still holds the old inode (and its
// -wal), so nothing is lost yet; VACUUM INTO copies it to the path as one
// consistent snapshot (https://sqlite.org/lang_vacuum.html#vacuuminto).
// Truncated or overwritten in place: the inode itself is damaged. Reading it
// could return pages of zeros as data, so nothing is copied from it; the
// process still knows its agent id, its last seq and what each sink
// acknowledged, which is all a new file needs to go on in the same seq space
// and to declare exactly which seqs were lost.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <map>
#include <tuple>

#include "gap.h"
#include "outbox_core.h"

namespace tally::queue {
namespace fs = std::filesystem;

namespace {

Status fsync_path(const fs::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return errno_error(fmt::format("open {} to sync it", path.string()));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return errno_error(fmt::format("fsync {}", path.string()), err);
  return ok_status();
}

fs::path directory_of(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

bool same_inode(const FileStamp& a, const FileStamp& b) {
  return a.exists && b.exists && a.dev == b.dev && a.ino == b.ino;
}

}  // namespace

Status OutboxCore::check_copy(const fs::path& copy) const {
  // The copy replaces the only other copy there is: it must be this
  // outbox, whole, before anything is moved.
  auto db = sql::Database::open(copy, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX);
  if (!db) return db.error();
  auto id = db->query_text("SELECT value FROM meta WHERE key = 'agent_id'");
  if (!id) return id.error().context("check the copy");
  if (*id != agent_id_) {
    return Error::format("the copy {} holds agent id {}, not {}", copy.string(), *id, agent_id_);
  }
  auto verdict = db->query_text("PRAGMA quick_check(1)");
  if (!verdict) return verdict.error().context("check the copy");
  if (*verdict != "ok") return Error::format("the copy {} is damaged: {}", copy.string(), *verdict);
  return ok_status();
}

Result<bool> OutboxCore::check_file(std::uint64_t now_ns) {
  checked_since_append_ = true;
  if (auto locked = lock_.check(); !locked) {
    // Someone deleted the lock file and another process took the new one:
    // two writers may now share this outbox. Loud, and in status.
    if (lock_problem_ != locked.error().message()) log::error("{}", locked.error().message());
    lock_problem_ = locked.error().message();
  } else {
    lock_problem_.clear();
  }
  if (!unresolved_) {
    const FileChange change =
        compare_stamps(stamps_, stamp_outbox(options_.path, /*with_shm=*/false));
    if (change == FileChange::none) return false;
    // Said once per event, however many appends it takes to resolve.
    ++file_changes_;
    unresolved_ = change;
    recovery_ = Recovery::start;
    lost_ = Loss{state_.counters, state_.held_samples(), state_.staged_samples, state_.sinks};
    log::warning("outbox {} was {} under this process{}", options_.path.string(), describe(change),
                 recoverable(change) ? ": copying its data back from the open file"
                                     : ": what it held is lost; starting a new file that "
                                       "declares the loss");
  }
  const FileChange change = *unresolved_;
  auto resolved = recoverable(change) ? recover_by_copy(change, now_ns) : recreate(change, now_ns);
  if (!resolved) {
    file_problem_ = fmt::format(
        "the file was {}, and dealing with it failed (retried at the next "
        "append): {}",
        describe(change), resolved.error().message());
    log::error("outbox {}: {}", options_.path.string(), file_problem_);
    return resolved.error();
  }
  unresolved_.reset();
  file_problem_.clear();
  return !recoverable(change);
}

Status OutboxCore::recover_by_copy(FileChange change, std::uint64_t now_ns) {
  const fs::path& path = options_.path;
  const fs::path copy(path.string() + ".recovering");
  std::error_code ec;
  if (recovery_ == Recovery::start) {
    TALLY_TRY(usable());
    fs::remove(copy, ec);  // left by a recovery that died half-way
    TALLY_TRY_CTX(create_private_file(copy), "recover the outbox");
    auto vacuum = sql::Statement::prepare(db_, "VACUUM INTO ?1");
    if (!vacuum) return vacuum.error();
    const std::string target = copy.string();  // bound without a copy: must outlive run()
    vacuum->bind_text(1, target);
    db_.clear_last_error();
    if (auto copied = vacuum->run(); !copied) {
      // The old inode still works: go on with it, and try again later.
      fs::remove(copy, ec);
      after_failure();
      return copied.error().context("copy the outbox from the open file");
    }
    TALLY_TRY_CTX(fsync_path(copy, O_RDONLY), "recover the outbox");
    if (auto sound = check_copy(copy); !sound) {
      fs::remove(copy, ec);
      return sound.error().context("recover the outbox");
    }
    recovery_ = Recovery::copied;
  }
  if (recovery_ == Recovery::copied) {
    detach();
    // Our own stale -wal/-shm go (the copy holds what they did); anything
    // else at these paths came with another file and is moved aside whole.
    const OutboxStamps at_path = stamp_outbox(path);
    bool foreign = at_path.db.exists && !same_inode(at_path.db, stamps_.db);
    for (const auto& [now, ours, suffix] : {std::tuple{at_path.wal, stamps_.wal, "-wal"},
                                            std::tuple{at_path.shm, stamps_.shm, "-shm"}}) {
      if (!now.exists) continue;
      if (same_inode(now, ours)) {
        fs::remove(path.string() + suffix, ec);
      } else {
        foreign = true;
      }
    }
    if (foreign) {
      auto moved = move_outbox_aside(path, "foreign", now_ns);
      if (!moved) return moved.error().context("recover the outbox");
      log::warning("outbox {}: moved the file found in its place to {}", path.string(),
                   moved->string());
    }
    fs::rename(copy, path, ec);
    if (ec) {
      return Error::format("recover the outbox: rename {} to {}: {}", copy.string(), path.string(),
                           ec.message());
    }
    TALLY_TRY_CTX(fsync_path(directory_of(path), O_RDONLY | O_DIRECTORY), "recover the outbox");
    recovery_ = Recovery::in_place;
  }
  TALLY_TRY(attach(Attach::recovered, now_ns));
  last_file_change_ =
      fmt::format("{}: copied back from the open file, nothing lost", describe(change));
  log::warning("outbox {}: {}", path.string(), last_file_change_);
  return ok_status();
}

Status OutboxCore::recreate(FileChange change, std::uint64_t now_ns) {
  const fs::path& path = options_.path;
  if (recovery_ == Recovery::start) {
    detach();
    held_acks_.clear();  // their batches are gone with the file
    Inherited inherited{lost_.counters, lost_.sinks};
    const OutboxStamps at_path = stamp_outbox(path);
    if (at_path.db.exists || at_path.wal.exists || at_path.shm.exists) {
      auto moved = move_outbox_aside(path, "corrupt", now_ns);
      if (!moved) return moved.error().context("replace the lost outbox");
      ++inherited.counters[static_cast<std::size_t>(Counter::quarantine_events)];
      log::warning("outbox {}: moved what was left of it to {}", path.string(), moved->string());
    }
    TALLY_TRY(attach(Attach::recreated, now_ns, &inherited));
    recovery_ = Recovery::new_file;
  }

  // Per sink, the seqs it had not acknowledged; sinks with the same range
  // share one record. The samples are those the file held: exact for one
  // sink, an upper bound for a sink that had acknowledged more than another.
  const std::uint64_t last_seq = lost_.counters[static_cast<std::size_t>(Counter::last_seq)];
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::vector<std::int64_t>> ranges;
  for (const SinkState& sink : state_.sinks) {
    std::uint64_t acked = 0;
    for (const SinkState& before : lost_.sinks) {
      if (before.name == sink.name) acked = before.last_acked_seq;
    }
    const bool seqs_lost = acked < last_seq;
    if (!seqs_lost && lost_.staged_samples == 0) continue;
    ranges[seqs_lost ? std::pair{acked + 1, last_seq}
                     : std::pair{std::uint64_t{0}, std::uint64_t{0}}]
        .push_back(sink.id);
  }
  const std::string detail = fmt::format(
      "the outbox file was {} under tallyd; the batches it held and its staged samples are lost",
      describe(change));
  auto declared = transact([&](State& next) -> Status {
    for (const auto& [range, sink_ids] : ranges) {
      const GapRecord gap = make_gap(GapReason::outbox_lost, range.first, range.second,
                                     lost_.samples, detail, now_ns);
      TALLY_TRY(insert_gap(next, gap, sink_ids));
    }
    next[Counter::gap_samples_outbox_lost] += ranges.empty() ? 0 : lost_.samples;
    return ok_status();
  });
  if (!declared) return declared.error().context("declare what the lost outbox held");
  std::string seqs;
  for (const auto& [range, sink_ids] : ranges) {
    if (range.first == 0) continue;
    seqs += fmt::format("{}{}-{}", seqs.empty() ? "" : ", ", range.first, range.second);
  }
  last_file_change_ = fmt::format(
      "{}: recreated with the same agent id; {} samples lost (seqs {}), declared by gap records",
      describe(change), ranges.empty() ? 0 : lost_.samples, seqs.empty() ? "none" : seqs);
  log::warning("outbox {}: {}", path.string(), last_file_change_);
  return ok_status();
}

void OutboxCore::detach() {
  if (db_.handle() != nullptr) {
    // Its database file may not be ours any more: no checkpoint into it.
    sqlite3_db_config(db_.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    sqlite3_wal_hook(db_.handle(), nullptr, nullptr);
  }
  stmts_ = Statements();
  db_ = sql::Database();
}

Status OutboxCore::declare_lost_predecessor(std::uint64_t now_ns) {
  const std::optional<Witness>& witness = lock_.previous();
  if (!witness || witness->last_seq == 0) return ok_status();
  const std::uint64_t last_seq = state_[Counter::last_seq];
  if (witness->agent_id == agent_id_ && witness->last_seq <= last_seq) return ok_status();
  GapRecord gap;
  std::string what;
  if (witness->agent_id == agent_id_) {
    // An older copy of this outbox: its writer went on to seqs this file
    // never saw. They must not be used twice.
    gap = make_gap(GapReason::outbox_lost, last_seq + 1, witness->last_seq, 0,
                   fmt::format("the outbox file is older than its last writer left it (seq {}, "
                               "now {}): seqs {} to {} are lost",
                               witness->last_seq, last_seq, last_seq + 1, witness->last_seq),
                   now_ns);
    what = fmt::format("seqs {} to {}", last_seq + 1, witness->last_seq);
  } else {
    gap = make_gap(GapReason::outbox_lost, 0, 0, witness->samples,
                   fmt::format("the outbox of agent {} was deleted or replaced while tallyd was "
                               "not running; what it had not shipped (up to seq {}, {} samples) "
                               "is lost",
                               witness->agent_id, witness->last_seq, witness->samples),
                   now_ns);
    gap.predecessor = GapPredecessor{witness->agent_id, witness->last_seq};
    what = fmt::format("agent {} up to seq {}", witness->agent_id, witness->last_seq);
  }
  auto declared = transact([&](State& next) -> Status {
    if (witness->agent_id == agent_id_) next[Counter::last_seq] = witness->last_seq;
    TALLY_TRY(insert_gap(next, gap, all_sink_ids()));
    next[Counter::gap_samples_outbox_lost] += gap.samples;
    return ok_status();
  });
  if (!declared) {
    // Opening must not need space (a full disk): the witness stays as it
    // is, so the next open declares it.
    log::warning("outbox {}: could not declare the loss of {}: {}", options_.path.string(), what,
                 declared.error().message());
    witness_frozen_ = true;
    return ok_status();
  }
  if (gap.predecessor) predecessor_ = gap.predecessor;
  ++file_changes_;
  last_file_change_ = fmt::format(
      "found at open: not the file its last writer left; {} declared "
      "lost ({} samples)",
      what, gap.samples);
  log::warning("outbox {}: {}", options_.path.string(), last_file_change_);
  return ok_status();
}

}  // namespace tally::queue
