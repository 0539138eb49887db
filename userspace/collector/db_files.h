// The collector database holds every agent's process command lines, which
// can carry secrets: its files are for the collector's user only.
#pragma once

#include <string>

#include "tally/result.h"

namespace tally::collector {

// Before SQLite opens `path`: creates its directory (the last component
// only, mode 0700) and the database file (mode 0600) when they are missing.
// SQLite gives the -wal and -shm files it creates the database file's mode
// (os_unix.c, findCreateFileMode), so they are 0600 too. An existing
// database file, -wal or -shm that others may read is narrowed to 0600, and
// that is logged.
Status prepare_db_files(const std::string& path);

}  // namespace tally::collector
