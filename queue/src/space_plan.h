// How much an outbox may store, and how large its WAL may grow, on the
// filesystem it lives on. Free of I/O.
//
// Why: the WAL is checkpointed (and reset) once it holds a given number of
// pages; SQLite's default of 1,000 pages (4 MiB) does not fit on a 2 MiB
// filesystem, where the WAL then fills the disk and every write fails. And
// the cap counts stored bytes, which the database file exceeds by its pages'
// slack and indexes: a cap the filesystem cannot hold only moves the failure.
#pragma once

#include <cstdint>
#include <optional>

namespace tally::queue {

struct FilesystemSpace {
  std::uint64_t size_bytes = 0;  // the filesystem's capacity (statvfs f_blocks)
  std::uint64_t free_bytes = 0;  // available to this process (f_bavail)
};

struct SpacePlan {
  // What the stored bytes are held under: the configured cap, or less when
  // the filesystem is too small for it.
  std::uint64_t effective_cap_bytes = 0;
  bool limited_by_filesystem = false;
  // The WAL is checkpointed once it reaches this, and truncated back to it
  // after a reset (PRAGMA journal_size_limit).
  std::uint64_t wal_limit_bytes = 0;
};

// SQLite's default checkpoint threshold, 1,000 pages of 4 KiB: kept where
// there is room for it.
inline constexpr std::uint64_t kMaxWalBytes = 4ull << 20;
inline constexpr std::uint64_t kMinWalBytes = 64ull << 10;
// Besides the database and the WAL: the -shm file (32 KiB), the lock file,
// and slack for a transaction that runs past the checkpoint threshold.
inline constexpr std::uint64_t kFixedOverheadBytes = 128ull << 10;

// The WAL gets an eighth of the smaller of the cap and the filesystem
// (within [64 KiB, 4 MiB]); the database may use what the filesystem has
// left after the WAL and kFixedOverheadBytes. When that is less than the
// cap, eviction holds both the stored bytes and the database's used pages
// under it (outbox_evict.cc): pages, because on a small filesystem the
// per-row overhead of small batches matters. `fs` is nullopt when statvfs
// failed: the configured cap is kept.
SpacePlan plan_space(std::uint64_t cap_bytes, std::optional<FilesystemSpace> fs);

}  // namespace tally::queue
