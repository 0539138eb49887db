#include "test_support.h"

#include "blob_codec.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace tally::queue::testing {

ScratchDir::ScratchDir() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? info->name() : "outbox";
  // Parameterised tests are named "Name/0": one directory, not two.
  std::replace(name.begin(), name.end(), '/', '_');
  path_ = std::filesystem::path(::testing::TempDir()) /
          fmt::format("tally-queue-{}-{}-{}", getpid(), counter++, name);
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<std::string> make_samples(std::size_t count, std::string_view tag, std::size_t size) {
  std::vector<std::string> samples;
  samples.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string s = fmt::format(R"({{"t":"{}","i":{},"pad":")", tag, i);
    const std::size_t used = s.size() + 2;
    s.append(size > used ? size - used : 0, 'x');
    s += "\"}";
    samples.push_back(std::move(s));
  }
  return samples;
}

OutboxOptions options_for(const std::filesystem::path& db, std::vector<std::string> sinks) {
  OutboxOptions options;
  options.path = db;
  options.sinks = std::move(sinks);
  return options;
}

std::unique_ptr<Outbox> open_or_die(const OutboxOptions& options, std::uint64_t now) {
  auto outbox = Outbox::open(options, now);
  if (!outbox) {
    ADD_FAILURE() << outbox.error().message();
    return nullptr;
  }
  return std::move(*outbox);
}

namespace {
struct RawDb {
  explicit RawDb(const std::filesystem::path& path) {
    sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  }
  ~RawDb() { sqlite3_close_v2(db); }
  sqlite3* db = nullptr;
};
}  // namespace

std::vector<RawBatch> read_batches(const std::filesystem::path& db) {
  RawDb raw(db);
  tally::queue::BlobCodec codec;
  std::vector<RawBatch> out;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(
          raw.db, "SELECT seq, kind, sample_count, payload, codec, bytes FROM batches ORDER BY seq",
          -1, &stmt, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "read batches: " << sqlite3_errmsg(raw.db);
    return out;
  }
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    RawBatch b;
    b.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    b.kind = sqlite3_column_int(stmt, 1);
    b.sample_count = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 2));
    const void* data = sqlite3_column_blob(stmt, 3);
    const std::string_view blob(static_cast<const char*>(data),
                                static_cast<std::size_t>(sqlite3_column_bytes(stmt, 3)));
    // Payloads are stored compressed (blob_codec.h): compare what they hold.
    auto payload = codec.unpack(blob, static_cast<tally::queue::Codec>(sqlite3_column_int(stmt, 4)),
                                static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 5)));
    if (!payload) ADD_FAILURE() << "seq " << b.seq << ": " << payload.error().message();
    b.payload = payload ? std::move(*payload) : std::string(blob);
    out.push_back(std::move(b));
  }
  sqlite3_finalize(stmt);
  return out;
}

std::string query(const std::filesystem::path& db, const std::string& sql) {
  RawDb raw(db);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(raw.db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    std::string err = sqlite3_errmsg(raw.db);
    return "error: " + err;
  }
  std::string result;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt, 0);
    result = text != nullptr ? reinterpret_cast<const char*>(text) : "";
  } else if (rc != SQLITE_DONE) {
    result = std::string("error: ") + sqlite3_errmsg(raw.db);
  }
  sqlite3_finalize(stmt);
  return result;
}

std::string integrity_check(const std::filesystem::path& db) {
  return query(db, "PRAGMA integrity_check");
}

std::vector<std::string> lines_of(std::string_view payload) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nl = payload.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.emplace_back(payload.substr(start));
      return lines;
    }
    lines.emplace_back(payload.substr(start, nl - start));
    start = nl + 1;
  }
}

std::string open_error_in_child(const std::filesystem::path& db, bool as_nobody) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (as_nobody && (::setgid(65534) != 0 || ::setuid(65534) != 0)) _exit(2);
    auto outbox = Outbox::open(options_for(db), kT0);
    const std::string msg = outbox ? std::string("opened") : outbox.error().message();
    [[maybe_unused]] auto n = ::write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 2) return "setuid failed";
  return msg;
}

std::vector<Batch> drain(Outbox& outbox, std::string_view sink) {
  std::vector<Batch> out;
  for (;;) {
    auto next = outbox.next_ready(sink);
    if (!next) {
      ADD_FAILURE() << next.error().message();
      return out;
    }
    if (!next->has_value()) return out;
    auto acked = outbox.ack(sink, (*next)->seq);
    if (!acked) {
      ADD_FAILURE() << acked.error().message();
      return out;
    }
    out.push_back(std::move(**next));
  }
}

}  // namespace tally::queue::testing
