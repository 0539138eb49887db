#include "file_stamp.h"

#include <sys/stat.h>

namespace tally::queue {

FileStamp stamp_file(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return FileStamp{
      true, st.st_dev, st.st_ino, static_cast<std::uint64_t>(st.st_size),
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

OutboxStamps stamp_outbox(const std::filesystem::path& db_path, bool with_shm) {
  const std::string base = db_path.string();
  return {stamp_file(db_path), stamp_file(base + "-wal"),
          with_shm ? stamp_file(base + "-shm") : FileStamp{}};
}

namespace {

bool same_inode(const FileStamp& a, const FileStamp& b) {
  return a.exists && b.exists && a.dev == b.dev && a.ino == b.ino;
}

}  // namespace

FileChange compare_stamps(const OutboxStamps& known, const OutboxStamps& now) {
  if (!now.db.exists) return FileChange::deleted;
  if (!same_inode(known.db, now.db)) return FileChange::replaced;
  if (now.db.size < known.db.size) return FileChange::truncated;
  if (now.db.size != known.db.size || now.db.mtime_ns != known.db.mtime_ns) {
    return FileChange::overwritten;
  }
  if (known.wal.exists && !same_inode(known.wal, now.wal)) return FileChange::wal_removed;
  return FileChange::none;
}

bool recoverable(FileChange change) {
  return change == FileChange::deleted || change == FileChange::replaced ||
         change == FileChange::wal_removed;
}

const char* describe(FileChange change) {
  switch (change) {
    case FileChange::none:
      return "unchanged";
    case FileChange::deleted:
      return "deleted";
    case FileChange::replaced:
      return "replaced by another file";
    case FileChange::wal_removed:
      return "its -wal file deleted or replaced";
    case FileChange::truncated:
      return "truncated";
    case FileChange::overwritten:
      return "overwritten in place";
  }
  return "changed";
}

}  // namespace tally::queue
