// Helpers shared by the outbox tests: scratch directories, sample records,
// and a raw look at the database file that bypasses the Outbox.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "tally/queue/outbox.h"

namespace tally::queue::testing {

inline constexpr std::uint64_t kSecond = 1'000'000'000ULL;
// 2024-01-01T00:00:00Z: a realistic "now" for tests that pass time explicitly.
inline constexpr std::uint64_t kT0 = 1'704'067'200ULL * kSecond;

// A fresh directory under the test temp dir, removed with its contents.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// `count` JSON sample records of about `size` bytes: {"t":"<tag>","i":<n>,"pad":"..."}.
std::vector<std::string> make_samples(std::size_t count, std::string_view tag,
                                      std::size_t size = 250);

OutboxOptions options_for(const std::filesystem::path& db,
                          std::vector<std::string> sinks = {"collector"});

// Opens or fails the test.
std::unique_ptr<Outbox> open_or_die(const OutboxOptions& options, std::uint64_t now = kT0);

struct RawBatch {
  std::uint64_t seq = 0;
  int kind = 0;  // 0 samples, 1 gap
  std::uint64_t sample_count = 0;
  std::string payload;
};

// Every batch row, in seq order, read with a separate connection.
std::vector<RawBatch> read_batches(const std::filesystem::path& db);
// "ok" or the first problem PRAGMA integrity_check reports.
std::string integrity_check(const std::filesystem::path& db);
// Runs SQL on the file with a separate connection; returns the first column
// of the first row as text ("" if none).
std::string query(const std::filesystem::path& db, const std::string& sql);

// Lines of a payload joined by '\n'.
std::vector<std::string> lines_of(std::string_view payload);

// Runs Outbox::open(options_for(db)) in a child process, as user nobody
// if `as_nobody` (the tests run as root, for whom permission checks pass),
// and returns its error message, or "opened".
std::string open_error_in_child(const std::filesystem::path& db, bool as_nobody);

// Acks everything ready for `sink` now; returns the batches in ack order.
std::vector<Batch> drain(Outbox& outbox, std::string_view sink);

}  // namespace tally::queue::testing
