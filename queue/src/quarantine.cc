#include "quarantine.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <system_error>
#include <vector>

#include "tally/log.h"

namespace tally::queue {
namespace {

namespace fs = std::filesystem;

// The database goes last: if we die halfway, the bad file is still in place
// (and is diagnosed again at the next open) rather than a fresh database
// next to the old -wal, whose frames SQLite would replay into it.
constexpr std::array<const char*, 4> kSiblingSuffixes = {"-wal", "-shm", "-journal", ""};

fs::path with_suffix(const fs::path& path, std::string_view suffix) {
  return fs::path(path.string() + std::string(suffix));
}

std::string utc_stamp(std::uint64_t now_ns) {
  const time_t secs = static_cast<time_t>(now_ns / 1'000'000'000ULL);
  tm parts{};
  gmtime_r(&secs, &parts);
  std::array<char, 32> buf{};
  const std::size_t n = strftime(buf.data(), buf.size(), "%Y%m%dT%H%M%SZ", &parts);
  return std::string(buf.data(), n);
}

bool any_sibling_exists(const fs::path& base) {
  std::error_code ec;
  for (const char* suffix : kSiblingSuffixes) {
    if (fs::exists(with_suffix(base, suffix), ec)) return true;
  }
  return false;
}

}  // namespace

Result<fs::path> move_outbox_aside(const fs::path& path, std::string_view label,
                                   std::uint64_t now_ns) {
  const std::string stem = fmt::format("{}.{}-{}", path.string(), label, utc_stamp(now_ns));
  fs::path target(stem);
  for (int n = 1; any_sibling_exists(target); ++n) target = fs::path(fmt::format("{}.{}", stem, n));
  for (const char* suffix : kSiblingSuffixes) {
    const fs::path from = with_suffix(path, suffix);
    std::error_code ec;
    if (!fs::exists(from, ec)) continue;
    // The wal keeps its suffix so "sqlite3 <target>" still sees its frames.
    fs::rename(from, with_suffix(target, suffix), ec);
    if (ec) {
      return Error::format("move {} aside: rename to {}: {}", from.string(),
                           with_suffix(target, suffix).string(), ec.message());
    }
  }
  return target;
}

namespace {

// Why the file at db is not a healthy outbox, nullopt if it is one, or an
// error if that cannot be decided (permissions, I/O): only a file SQLite
// positively calls damaged is moved aside.
Result<std::optional<std::string>> diagnose(sql::Database& db, int known_version) {
  auto bad_or_error = [&](const char* what, int rc) -> Result<std::optional<std::string>> {
    const int primary = rc & 0xff;
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
      return std::optional<std::string>(fmt::format("{}: {}", what, sqlite3_errmsg(db.handle())));
    }
    return db.error(fmt::format("{} of", what), rc);
  };

  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db.handle(), "PRAGMA user_version", -1, &raw, nullptr);
  std::int64_t version = 0;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) version = sqlite3_column_int64(raw, 0);
  }
  sqlite3_finalize(raw);
  if (rc != SQLITE_ROW) return bad_or_error("read schema version", rc);

  // quick_check: b-tree structure of every page, without the O(N log N)
  // index cross-check of integrity_check (https://sqlite.org/pragma.html#pragma_quick_check).
  raw = nullptr;
  rc = sqlite3_prepare_v2(db.handle(), "PRAGMA quick_check(1)", -1, &raw, nullptr);
  std::string verdict;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) {
      const auto* text = sqlite3_column_text(raw, 0);
      verdict = text != nullptr ? reinterpret_cast<const char*>(text) : "";
    }
  }
  sqlite3_finalize(raw);
  if (rc != SQLITE_ROW) return bad_or_error("quick_check", rc);
  if (verdict != "ok") {
    // One log line: quick_check puts a newline after "*** in database main ***".
    std::replace(verdict.begin(), verdict.end(), '\n', ' ');
    return std::optional<std::string>("quick_check: " + verdict);
  }

  if (version > known_version) {
    return std::optional<std::string>(
        fmt::format("schema version {} is newer than {}", version, known_version));
  }
  if (version == 0) {
    auto tables = db.query_int("SELECT count(*) FROM sqlite_schema");
    if (!tables) return tables.error();
    if (*tables > 0) {
      return std::optional<std::string>("not an outbox: tables present but no schema version");
    }
  }
  return std::optional<std::string>();
}

// A file of ours that others can read: made private, and said once.
void make_private(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || (st.st_mode & 077) == 0) return;
  if (::chmod(path.c_str(), st.st_mode & 0700) == 0) {
    log::warning("outbox file {} was readable by others (mode {:04o}); made it {:04o}",
                 path.string(), st.st_mode & 07777, st.st_mode & 0700);
  }
}

// Opens an existing file and reads its verdict. The first read of a WAL
// database creates its -shm file; on a full disk that fails (SQLite calls
// it an I/O error), and the file is opened again without one.
struct Examined {
  sql::Database db;
  std::optional<std::string> problem;
  bool exclusive = false;
};
Result<Examined> examine(const fs::path& path, int known_version) {
  auto db = open_outbox_connection(path, false);
  if (!db) return db.error().context("open outbox");
  auto problem = diagnose(*db, known_version);
  if (problem) return Examined{std::move(*db), std::move(*problem), false};
  if (!db->last_error_was_disk_full()) return problem.error().context("check outbox");
  log::warning(
      "outbox {}: the disk is full; opening it without a -shm file (other processes "
      "cannot read it until tallyd restarts): {}",
      path.string(), problem.error().message());
  *db = sql::Database();
  auto without_shm = open_outbox_connection(path, true);
  if (!without_shm) return without_shm.error().context("open outbox");
  auto again = diagnose(*without_shm, known_version);
  if (!again) return again.error().context("check outbox");
  return Examined{std::move(*without_shm), std::move(*again), true};
}

}  // namespace

Status ensure_outbox_directory(const fs::path& path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  // Each missing component is made 0700 (less if the umask says so):
  // create_directories would make them 0777 & ~umask.
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), 0700) != 0 && errno != EEXIST) {
      return errno_error(fmt::format("create outbox directory {}", it->string()));
    }
  }
  // As root, access() is generous, but then so is open(); as a service user
  // this turns SQLite's vague "unable to open database file" into the cause.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return errno_error(fmt::format("outbox directory {}", dir.string()));
  }
  return ok_status();
}

Status create_private_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return errno_error(fmt::format("create {}", path.string()));
  ::close(fd);
  return ok_status();
}

Result<sql::Database> open_outbox_connection(const fs::path& path, bool exclusive) {
  auto db = sql::Database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  if (!db) return db.error();
  // Before the first read: only then does SQLite keep the WAL index in
  // heap memory instead of the -shm file (https://sqlite.org/wal.html#noshm).
  if (exclusive) TALLY_TRY_CTX(db->exec("PRAGMA locking_mode = EXCLUSIVE"), "open without -shm");
  return db;
}

Result<OpenedDb> open_outbox_file(const fs::path& path, int known_version, std::uint64_t now_ns) {
  OpenedDb opened;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (::access(path.c_str(), R_OK | W_OK) != 0) {
      return errno_error(fmt::format("open outbox {}", path.string()));
    }
    for (const char* suffix : {"", "-wal", "-shm"}) make_private(with_suffix(path, suffix));
    auto examined = examine(path, known_version);
    if (!examined) return examined.error();
    if (examined->problem) {
      examined->db = sql::Database();  // close before renaming
      auto moved = move_outbox_aside(path, "corrupt", now_ns);
      if (!moved) return moved.error();
      log::warning("outbox {} is unusable ({}); moved it to {} and starting a new outbox",
                   path.string(), *examined->problem, moved->string());
      opened.quarantined = true;
    } else {
      opened.db = std::move(examined->db);
      opened.exclusive = examined->exclusive;
      return opened;
    }
  }
  TALLY_TRY_CTX(create_private_file(path), "create outbox");
  auto created = sql::Database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
  if (!created) return created.error().context("create outbox");
  opened.db = std::move(*created);
  return opened;
}

std::uint64_t count_quarantined_files(const fs::path& path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::string corrupt = path.filename().string() + ".corrupt-";
  const std::string foreign = path.filename().string() + ".foreign-";
  std::uint64_t count = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(corrupt) && !name.starts_with(foreign)) continue;
    if (name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-journal")) continue;
    ++count;
  }
  return count;
}

}  // namespace tally::queue
