// Opening the outbox file safely: a file that is not a healthy outbox is
// moved aside (never deleted) so the agent starts fresh instead of
// crash-looping, and the quarantined files stay countable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "tally/result.h"
#include "tally/sqlite.h"

namespace tally::queue {

struct OpenedDb {
  sql::Database db;
  bool quarantined = false;  // a bad file was moved aside before creating db
  // The disk was too full to create the -shm file, so the connection keeps
  // the WAL index in its own memory (PRAGMA locking_mode=EXCLUSIVE): no
  // other process can read the file while it is open.
  bool exclusive = false;
};

// Creates the outbox's directory if it is missing, mode 0700 (it will hold
// every process's command line), and checks that it is writable.
Status ensure_outbox_directory(const std::filesystem::path& path);

// Opens `path` read-write, creating it (mode 0600) if missing. An existing
// file that is not a database, fails PRAGMA quick_check,
// has a user_version above `known_version`, or has user_version 0 with
// tables in it (someone else's database) is renamed with its -wal/-shm to
// "<path>.corrupt-<YYYYmmddTHHMMSSZ>[.N]" and a warning is logged. Permission
// and I/O errors are returned and leave the file alone. An existing file
// readable by others (an older tally created it 0644) is made 0600.
Result<OpenedDb> open_outbox_file(const std::filesystem::path& path, int known_version,
                                  std::uint64_t now_ns);

// Opens an existing outbox file without checking it (one this process just
// wrote), in exclusive locking mode if `exclusive`.
Result<sql::Database> open_outbox_connection(const std::filesystem::path& path, bool exclusive);

// Renames `path` and its -wal/-shm/-journal to a free
// "<path>.<label>-<YYYYmmddTHHMMSSZ>[.N]" and returns the new name of `path`.
Result<std::filesystem::path> move_outbox_aside(const std::filesystem::path& path,
                                                std::string_view label, std::uint64_t now_ns);

// Creates `path` empty with mode 0600, so that SQLite (which gives -wal and
// -shm the database's mode) never creates any of them readable by others.
Status create_private_file(const std::filesystem::path& path);

// Number of databases moved aside next to `path` (".corrupt-*" and
// ".foreign-*"; their -wal/-shm not counted).
std::uint64_t count_quarantined_files(const std::filesystem::path& path);

}  // namespace tally::queue
