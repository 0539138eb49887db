// Bad files are moved aside, counted, and replaced by a working outbox;
// files we may not touch are reported, not quarantined.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;
namespace fs = std::filesystem;

std::vector<fs::path> quarantined_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".corrupt-") != std::string::npos && !name.ends_with("-wal") &&
        !name.ends_with("-shm")) {
      out.push_back(e.path());
    }
  }
  return out;
}

void expect_fresh_and_working(Outbox& outbox, std::uint64_t quarantined_files) {
  auto stats = outbox.stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->quarantine_events, 1u);
  EXPECT_EQ(stats->quarantined_files, quarantined_files);
  EXPECT_EQ(stats->last_seq, 0u);
  auto r = outbox.append(make_samples(2, "after"), kT0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->first_seq, 1u);
  EXPECT_EQ(drain(outbox, "collector").size(), 1u);
}

TEST(OutboxQuarantine, GarbageFileIsMovedAsideAndANewOutboxStarts) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  {
    std::ofstream out(db, std::ios::binary);
    for (int i = 0; i < 1000; ++i) out << "this is not a database ";
  }
  const auto size = fs::file_size(db);
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  const auto moved = quarantined_in(dir.path());
  ASSERT_EQ(moved.size(), 1u);
  // outbox.db.corrupt-20240101T000000Z: named after the open time, in UTC.
  EXPECT_EQ(moved[0].filename(), "outbox.db.corrupt-20240101T000000Z");
  EXPECT_EQ(fs::file_size(moved[0]), size);  // moved, not rewritten
  expect_fresh_and_working(*outbox, 1);
}

TEST(OutboxQuarantine, DatabaseWithADamagedPageIsMovedAside) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  std::string agent;
  {
    auto outbox = open_or_die(options_for(db));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(outbox->append(make_samples(50, "a"), kT0));
    agent = outbox->agent_id();
  }
  ASSERT_FALSE(fs::exists(fs::path(db.string() + "-wal")));  // checkpointed at close
  const auto page_size = std::stoul(query(db, "PRAGMA page_size"));
  {
    // Overwrite pages 2 and 3 (b-tree roots of the first tables) with garbage.
    const int fd = ::open(db.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string garbage(2 * page_size, '\xA5');
    ASSERT_EQ(::pwrite(fd, garbage.data(), garbage.size(), static_cast<off_t>(page_size)),
              static_cast<ssize_t>(garbage.size()));
    ::close(fd);
  }
  ASSERT_NE(integrity_check(db), "ok");
  auto outbox = open_or_die(options_for(db), kT0 + 3600 * kSecond);
  ASSERT_NE(outbox, nullptr);
  const auto moved = quarantined_in(dir.path());
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].filename(), "outbox.db.corrupt-20240101T010000Z");
  EXPECT_NE(outbox->agent_id(), agent);  // the old identity went with the file
  // ...but the lock file beside it remembers it: the new agent's first
  // batch declares what the old one lost.
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->quarantine_events, 1u);
  ASSERT_TRUE(stats->predecessor.has_value());
  EXPECT_EQ(stats->predecessor->agent_id, agent);
  EXPECT_EQ(stats->predecessor->last_seq, 20u);
  const auto shipped = drain(*outbox, "collector");
  ASSERT_EQ(shipped.size(), 1u);
  ASSERT_TRUE(shipped[0].gap.has_value());
  EXPECT_EQ(shipped[0].seq, 1u);
  EXPECT_EQ(shipped[0].gap->reason, GapReason::outbox_lost);
  EXPECT_EQ(shipped[0].gap->samples, 1000u);  // 20 batches of 50, none acked
  EXPECT_EQ(shipped[0].gap->predecessor, (GapPredecessor{agent, 20}));
  auto r = outbox->append(make_samples(2, "after"), kT0);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->first_seq, 2u);
}

TEST(OutboxQuarantine, SecondQuarantineInTheSameSecondGetsASuffix) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  for (int round = 0; round < 2; ++round) {
    std::ofstream(db, std::ios::binary) << std::string(4096, 'z');
    ASSERT_NE(open_or_die(options_for(db)), nullptr);
  }
  EXPECT_TRUE(fs::exists(dir / "outbox.db.corrupt-20240101T000000Z"));
  EXPECT_TRUE(fs::exists(dir / "outbox.db.corrupt-20240101T000000Z.1"));
  EXPECT_EQ(open_or_die(options_for(db))->stats(kT0)->quarantined_files, 2u);
}

TEST(OutboxQuarantine, MissingDirectoryIsCreated) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "a" / "b" / "outbox.db"));
  ASSERT_NE(outbox, nullptr);
  EXPECT_TRUE(fs::exists(dir / "a" / "b" / "outbox.db"));
  EXPECT_EQ(outbox->stats(kT0)->quarantine_events, 0u);
}

TEST(OutboxQuarantine, PermissionDeniedIsAClearErrorAndTheFileIsLeftAlone) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  ScratchDir dir;
  const fs::path locked = dir / "locked";
  const fs::path db = locked / "outbox.db";
  { ASSERT_NE(open_or_die(options_for(db)), nullptr); }
  fs::permissions(dir.path(), fs::perms::all);    // the scratch dir itself is traversable
  fs::permissions(locked, fs::perms::owner_all);  // 0700, owned by root
  const std::string msg = open_error_in_child(db, true);
  EXPECT_NE(msg.find(locked.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Permission denied"), std::string::npos) << msg;
  EXPECT_TRUE(quarantined_in(locked).empty());
  EXPECT_EQ(integrity_check(db), "ok");
}

}  // namespace
}  // namespace tally::queue
