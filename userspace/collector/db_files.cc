#include "collector/db_files.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "tally/fd.h"
#include "tally/log.h"

namespace tally::collector {

namespace {

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;

Status narrow_mode(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return ok_status();
    return errno_error(fmt::format("stat {}", file));
  }
  if ((st.st_mode & 077) == 0) return ok_status();
  if (::chmod(file.c_str(), kFileMode) != 0) {
    return errno_error(fmt::format("narrow the mode of {} to 0600", file));
  }
  log::info("narrowed the mode of {} from {:04o} to 0600: it holds every process's command line",
            file, st.st_mode & 07777);
  return ok_status();
}

}  // namespace

Status prepare_db_files(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && ::mkdir(dir.c_str(), kDirMode) != 0 && errno != EEXIST) {
    return errno_error(fmt::format("create directory {} for database {}", dir.string(), path));
  }
  UniqueFd created(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, kFileMode));
  if (!created.valid() && errno != EEXIST) {
    return errno_error(fmt::format("create database {}", path));
  }
  // Not fatal: the database still works, and the operator is told.
  for (const char* suffix : {"", "-wal", "-shm"}) {
    Status narrowed = narrow_mode(path + suffix);
    if (!narrowed.ok()) log::warning("{}", narrowed.error().message());
  }
  return ok_status();
}

}  // namespace tally::collector
