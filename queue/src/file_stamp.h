// What the outbox's files looked like when it last wrote them, and how to
// tell that someone else changed them since (deleted, replaced, truncated).
//
// Why this works: in WAL mode SQLite writes the database file only when it
// checkpoints, and the outbox runs every checkpoint itself (outbox_space.cc)
// and stamps the file after it. So any change of the database file's inode,
// size or mtime between two stamps was made by someone else. The -wal
// changes all the time; only its inode is compared. The -shm is stamped
// (a recovery must tell ours from another file's) but not compared:
// deleted alone it loses nothing, SQLite rebuilds it from the WAL, and
// `rm outbox.db*` shows in the database's stamp. Two stat calls a check.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

namespace tally::queue {

struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
};

// One stat(2); exists is false if the path is missing (or cannot be stat'ed).
FileStamp stamp_file(const std::filesystem::path& path);

struct OutboxStamps {
  FileStamp db, wal, shm;
};
// with_shm false: the -shm is not stat'ed (left not existing).
OutboxStamps stamp_outbox(const std::filesystem::path& db_path, bool with_shm = true);

enum class FileChange {
  none,
  // The database's inode is intact and still open: what it holds can be
  // copied back into place with nothing lost.
  deleted,      // the database path is gone
  replaced,     // another file is at the database path
  wal_removed,  // the -wal file was deleted or replaced
  // The open inode itself was changed: what it held is gone.
  truncated,    // shorter than the outbox left it
  overwritten,  // same inode and size or larger, but written by someone else
};

// Compares what is at the paths now with what the outbox stamped last.
FileChange compare_stamps(const OutboxStamps& known, const OutboxStamps& now);

// Whether the data can still be read from the open inode (deleted,
// replaced, wal_removed) rather than being lost.
bool recoverable(FileChange change);

// "deleted", "replaced by another file", ... for logs and status.
const char* describe(FileChange change);

}  // namespace tally::queue
