#include "quarantine.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>
#include <system_error>

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

// Renames path (and its -wal/-shm/-journal) to a free "<path>.corrupt-<stamp>[.N]".
Result<fs::path> move_aside(const fs::path& path, std::uint64_t now_ns) {
  const std::string stem = path.string() + ".corrupt-" + utc_stamp(now_ns);
  fs::path target(stem);
  for (int n = 1; any_sibling_exists(target); ++n) target = fs::path(fmt::format("{}.{}", stem, n));
  for (const char* suffix : kSiblingSuffixes) {
    const fs::path from = with_suffix(path, suffix);
    std::error_code ec;
    if (!fs::exists(from, ec)) continue;
    // The wal keeps its suffix so "sqlite3 <target>" still sees its frames.
    fs::rename(from, with_suffix(target, suffix), ec);
    if (ec) {
      return Error::format("quarantine {}: rename to {}: {}", from.string(),
                           with_suffix(target, suffix).string(), ec.message());
    }
  }
  return target;
}

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

Status ensure_directory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error::format("create outbox directory {}: {}", dir.string(), ec.message());
  // As root, access() is generous, but then so is open(); as a service user
  // this turns SQLite's vague "unable to open database file" into the cause.
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return errno_error(fmt::format("outbox directory {}", dir.string()));
  }
  return ok_status();
}

}  // namespace

Result<OpenedDb> open_outbox_file(const fs::path& path, int known_version,
                                  std::uint64_t now_ns) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  TALLY_TRY_CTX(ensure_directory(dir), "open outbox");

  OpenedDb opened;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (::access(path.c_str(), R_OK | W_OK) != 0) {
      return errno_error(fmt::format("open outbox {}", path.string()));
    }
    auto existing = sql::Database::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
    if (!existing) return existing.error().context("open outbox");
    auto problem = diagnose(*existing, known_version);
    if (!problem) return problem.error().context("check outbox");
    if (problem->has_value()) {
      *existing = sql::Database();  // close before renaming
      auto moved = move_aside(path, now_ns);
      if (!moved) return moved.error();
      log::warning("outbox {} is unusable ({}); moved it to {} and starting a new outbox",
                   path.string(), **problem, moved->string());
      opened.quarantined = true;
    } else {
      opened.db = std::move(*existing);
      return opened;
    }
  }
  auto created = sql::Database::open(
      path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX);
  if (!created) return created.error().context("create outbox");
  opened.db = std::move(*created);
  return opened;
}

std::uint64_t count_quarantined_files(const fs::path& path) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::string prefix = path.filename().string() + ".corrupt-";
  std::uint64_t count = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix)) continue;
    if (name.ends_with("-wal") || name.ends_with("-shm") || name.ends_with("-journal")) continue;
    ++count;
  }
  return count;
}

}  // namespace tally::queue
