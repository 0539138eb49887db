// Opening the outbox file safely: a file that is not a healthy outbox is
// moved aside (never deleted) so the agent starts fresh instead of
// crash-looping, and the quarantined files stay countable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "tally/sqlite.h"
#include "tally/result.h"

namespace tally::queue {

struct OpenedDb {
  sql::Database db;
  bool quarantined = false;  // a bad file was moved aside before creating db
};

// Creates the directory if needed, then opens `path` read-write (creating
// it). An existing file that is not a database, fails PRAGMA quick_check,
// has a user_version above `known_version`, or has user_version 0 with
// tables in it (someone else's database) is renamed with its -wal/-shm to
// "<path>.corrupt-<YYYYmmddTHHMMSSZ>[.N]" and a warning is logged. Permission
// and I/O errors are returned and leave the file alone.
Result<OpenedDb> open_outbox_file(const std::filesystem::path& path, int known_version,
                                  std::uint64_t now_ns);

// Number of quarantined databases next to `path` (their -wal/-shm not counted).
std::uint64_t count_quarantined_files(const std::filesystem::path& path);

}  // namespace tally::queue
