// The outbox and the space it has: checkpoints sized to the filesystem, the
// effective cap, and what a full disk does to writes.
//
// Why the outbox checkpoints itself: SQLite's autocheckpoint waits for 1,000
// pages (4 MiB) of WAL, more than a 2 MiB filesystem has, and it would write
// into whatever file is at the database's inode, even one someone truncated
// under us (file_stamp.h). So the WAL hook only counts frames, and after a
// commit that brings the WAL to its limit the outbox checks the file and
// runs a PASSIVE checkpoint (https://sqlite.org/c3ref/wal_checkpoint_v2.html).
// The next write then starts the WAL over from its beginning, within the
// space the file already has.
#include <sqlite3.h>
#include <sys/statvfs.h>

#include "outbox_core.h"

namespace tally::queue {
namespace {

// A WAL frame is a page plus its 24-byte header (https://sqlite.org/fileformat2.html#walformat).
constexpr std::uint64_t kWalFrameHeader = 24;

std::optional<FilesystemSpace> filesystem_of(const std::filesystem::path& db_path) {
  const std::filesystem::path dir = db_path.has_parent_path() ? db_path.parent_path() : ".";
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return std::nullopt;
  return FilesystemSpace{static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize,
                         static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize};
}

}  // namespace

void OutboxCore::refresh_space(bool new_connection) {
  fs_ = filesystem_of(options_.path);
  const SpacePlan plan = plan_space(options_.cap_bytes, fs_);
  if (db_.handle() != nullptr &&
      (new_connection || plan.wal_limit_bytes != space_.wal_limit_bytes)) {
    // After a checkpoint resets the WAL, it is truncated back to its limit
    // if a long transaction made it grow past it.
    (void)db_.exec(fmt::format("PRAGMA journal_size_limit = {}", plan.wal_limit_bytes));
  }
  if (plan.limited_by_filesystem &&
      (!space_.limited_by_filesystem || plan.effective_cap_bytes != space_.effective_cap_bytes)) {
    log::warning(
        "outbox {}: its filesystem ({} bytes) cannot hold the cap of {} bytes and a WAL "
        "of {} bytes; holding the outbox under {} bytes instead",
        options_.path.string(), fs_ ? fs_->size_bytes : 0, options_.cap_bytes, plan.wal_limit_bytes,
        plan.effective_cap_bytes);
  }
  space_ = plan;
}

int OutboxCore::on_wal_commit(void* self, sqlite3*, const char*, int frames) {
  static_cast<OutboxCore*>(self)->wal_frames_ = frames;
  return SQLITE_OK;
}

void OutboxCore::after_commit() {
  if (disk_full_) {
    log::info("outbox {}: writes succeed again", options_.path.string());
    disk_full_ = false;
  }
  save_held_acks();
  record_witness();
  if (static_cast<std::uint64_t>(wal_frames_) * (kPageBytes + kWalFrameHeader) >=
      space_.wal_limit_bytes) {
    checkpoint();
  }
}

void OutboxCore::after_failure() {
  if (!db_.last_error_was_disk_full()) return;
  refresh_space();  // a filesystem that shrank, and what is free, for status
  if (!disk_full_) {
    log::warning(
        "outbox {}: the disk is full: appends fail (their samples are counted and "
        "declared once a write succeeds), batches still ship",
        options_.path.string());
  }
  disk_full_ = true;
}

void OutboxCore::checkpoint() {
  if (db_.handle() == nullptr) return;
  if (compare_stamps(stamps_, stamp_outbox(options_.path, /*with_shm=*/false)) !=
      FileChange::none) {
    // Not ours any more: check_file() deals with it at the next append.
    return;
  }
  int wal_frames = 0, copied = 0;
  const int rc = sqlite3_wal_checkpoint_v2(db_.handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                           &wal_frames, &copied);
  if (rc != SQLITE_OK) {
    // Retried after the next commit; a full disk (the database file cannot
    // grow) is reported by the writes that fail.
    log::debug("outbox {}: checkpoint: {}", options_.path.string(), sqlite3_errmsg(db_.handle()));
  }
  stamps_.db = stamp_file(options_.path);
}

void OutboxCore::record_witness() {
  if (agent_id_.empty() || witness_frozen_) return;
  // Rewritten when the last seq moves (a write per interval, not per ack):
  // after a crash the samples it gives are as of the last append, an upper
  // bound; the destructor writes them exactly.
  const Witness& recorded = lock_.recorded();
  if (recorded.agent_id == agent_id_ && recorded.last_seq == state_[Counter::last_seq]) return;
  lock_.record(Witness{agent_id_, state_[Counter::last_seq], state_.held_samples()});
}

OutboxCore::~OutboxCore() {
  // A clean close leaves the witness exact (what is held after the acks).
  if (!agent_id_.empty() && !witness_frozen_) {
    lock_.record(Witness{agent_id_, state_[Counter::last_seq], state_.held_samples()});
  }
}

void OutboxCore::save_held_acks() {
  if (held_acks_.empty() || saving_held_acks_) return;
  saving_held_acks_ = true;
  std::size_t count = 0;
  auto saved = transact(
      [&](State& next) -> Status {
        for (const auto& [sink_id, seqs] : held_acks_) {
          for (const std::uint64_t seq : seqs) {
            TALLY_TRY(record_ack(next, sink_id, seq));
            ++count;
          }
        }
        return ok_status();
      },
      Durability::lazy);
  saving_held_acks_ = false;
  if (!saved) return;  // kept for the next write
  held_acks_.clear();
  log::info("outbox {}: wrote the {} acks held in memory while the disk was full",
            options_.path.string(), count);
}

}  // namespace tally::queue
