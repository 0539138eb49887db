#include "outbox_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <string_view>

#include "tally/log.h"

namespace tally::queue {
namespace fs = std::filesystem;

namespace {

// The file stays this size once written, so a shorter record never leaves
// the tail of a longer one behind and no ftruncate is needed per write.
constexpr std::size_t kRecordSize = 256;
constexpr std::size_t kMaxReadSize = 4096;

std::string read_all(int fd) {
  std::string text(kMaxReadSize, '\0');
  const ssize_t n = ::pread(fd, text.data(), text.size(), 0);
  text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return text;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "key value" lines; unknown keys and damaged lines are skipped (the file is
// written without fsync and may be cut short by a power loss).
struct LockRecord {
  std::optional<std::uint64_t> pid;
  std::optional<Witness> witness;
};

LockRecord parse_record(std::string_view text) {
  LockRecord record;
  Witness witness;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, space);
    const std::string_view value = line.substr(space + 1);
    if (key == "pid") {
      record.pid = parse_u64(value);
    } else if (key == "agent_id") {
      witness.agent_id = std::string(value);
    } else if (key == "last_seq") {
      witness.last_seq = parse_u64(value).value_or(0);
    } else if (key == "samples") {
      witness.samples = parse_u64(value).value_or(0);
    }
  }
  if (!witness.agent_id.empty()) record.witness = std::move(witness);
  return record;
}

// Opens (creating, 0600) and locks `path`; EWOULDBLOCK means another holder.
Result<UniqueFd> open_and_lock(const fs::path& path, const fs::path& db_path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return errno_error(fmt::format("create lock file {}", path.string()));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return errno_error(fmt::format("lock {}", path.string()));
    const LockRecord holder = parse_record(read_all(fd.get()));
    return Error::format(
        "outbox {} is in use by another process ({} holds {}): only one tallyd may use an "
        "outbox; stop the other one, or give this one its own --outbox",
        db_path.string(), holder.pid ? fmt::format("pid {}", *holder.pid) : "a process",
        path.string());
  }
  // A lock file left by an older tally may be readable by others; it holds
  // no secret, but the outbox's files are private as a set.
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0 && (st.st_mode & 077) != 0) (void)::fchmod(fd.get(), 0600);
  return fd;
}

}  // namespace

fs::path OutboxLock::path_for(const fs::path& db_path) {
  const fs::path dir = db_path.has_parent_path() ? db_path.parent_path() : fs::path(".");
  return dir / ("." + db_path.filename().string() + ".lock");
}

Result<OutboxLock> OutboxLock::acquire(const fs::path& db_path) {
  OutboxLock lock;
  lock.db_path_ = db_path;
  lock.pid_ = ::getpid();
  lock.path_ = path_for(db_path);
  auto fd = open_and_lock(lock.path_, db_path);
  if (!fd) return fd.error();
  lock.fd_ = std::move(*fd);
  lock.previous_ = parse_record(read_all(lock.fd_.get())).witness;
  // Our pid at once (for a second opener's message), the witness kept as it
  // was until the outbox behind it is open.
  if (auto written = lock.write(lock.previous_.value_or(Witness{})); !written) {
    log::warning("outbox lock {}: {}", lock.path_.string(), written.error().message());
  }
  lock.recorded_ = lock.previous_.value_or(Witness{});
  return lock;
}

Status OutboxLock::write(const Witness& witness) {
  std::string text = fmt::format("pid {}\n", pid_);
  if (!witness.agent_id.empty()) {
    text += fmt::format("agent_id {}\nlast_seq {}\nsamples {}\n", witness.agent_id,
                        witness.last_seq, witness.samples);
  }
  if (text.size() < kRecordSize) text.append(kRecordSize - text.size() - 1, ' ').push_back('\n');
  const ssize_t n = ::pwrite(fd_.get(), text.data(), text.size(), 0);
  if (n != static_cast<ssize_t>(text.size())) {
    return n < 0 ? errno_error("write the witness") : Error("write the witness: short write");
  }
  return ok_status();
}

void OutboxLock::record(const Witness& now) {
  if (!fd_.valid() || now == recorded_) return;
  if (auto written = write(now); !written) {
    if (!write_failed_) {
      log::warning("outbox lock {}: {} (a later start may not see what this agent held)",
                   path_.string(), written.error().message());
    }
    write_failed_ = true;
    return;
  }
  if (write_failed_) log::info("outbox lock {}: witness written again", path_.string());
  write_failed_ = false;
  recorded_ = now;
}

Status OutboxLock::check() {
  // One fstat: a lock file deleted, or replaced by a rename, has no link
  // left to the inode this lock holds.
  struct stat held {};
  if (::fstat(fd_.get(), &held) != 0) return errno_error(fmt::format("stat {}", path_.string()));
  if (held.st_nlink > 0) return ok_status();
  // Deleted or replaced: without a new lock a second tallyd could start on
  // this outbox, and the witness would be gone.
  auto fd = open_and_lock(path_, db_path_);
  if (!fd) return fd.error().context("the lock file was deleted or replaced; lock it again");
  fd_ = std::move(*fd);
  log::warning("outbox lock {} was deleted or replaced; locked a new one", path_.string());
  if (auto written = write(recorded_); !written) return written.error().context(path_.string());
  return ok_status();
}

}  // namespace tally::queue
