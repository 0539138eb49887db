// The outbox's file changed under it (deleted, replaced, truncated,
// overwritten), or found at open not to be the one its last writer left:
// nothing is lost silently.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "file_stamp.h"
#include "outbox_lock.h"
#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;
namespace fs = std::filesystem;

void remove_database(const fs::path& db) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(db.string() + suffix);
}

std::vector<fs::path> beside(const fs::path& db, const std::string& infix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(db.parent_path())) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(db.filename().string() + infix) && !name.ends_with("-wal") &&
        !name.ends_with("-shm")) {
      out.push_back(e.path());
    }
  }
  return out;
}

// Ten batches of ten samples, each naming a process by dictionary key.
std::unique_ptr<Outbox> outbox_with_ten_batches(const OutboxOptions& options) {
  auto outbox = open_or_die(options);
  if (!outbox) return nullptr;
  for (std::uint64_t key = 1; key <= 10; ++key) {
    DictionaryUpdate update;
    update.added = {{key, fmt::format("process {}", key)}};
    auto r = outbox->append(make_samples(10, fmt::format("b{}", key)), kT0, update);
    EXPECT_TRUE(r) << r.error().message();
  }
  return outbox;
}

TEST(OutboxFileChange, DeletedUnderItIsCopiedBackWithNothingLost) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = outbox_with_ten_batches(options_for(db));
  ASSERT_NE(outbox, nullptr);
  ASSERT_TRUE(outbox->ack("collector", 1));
  remove_database(db);  // rm outbox.db*

  auto r = outbox->append(make_samples(10, "after"), kT0 + kSecond);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->first_seq, 11u);
  // The file is back, whole, with the same identity.
  ASSERT_TRUE(fs::exists(db));
  EXPECT_EQ(query(db, "SELECT value FROM meta WHERE key = 'agent_id'"), outbox->agent_id());
  EXPECT_EQ(read_batches(db).size(), 10u);  // 2 to 11
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->file_changes, 1u);
  EXPECT_NE(stats->last_file_change.find("deleted"), std::string::npos) << stats->last_file_change;
  EXPECT_NE(stats->last_file_change.find("nothing lost"), std::string::npos);
  EXPECT_EQ(stats->gaps[static_cast<std::size_t>(GapReason::outbox_lost)].records, 0u);
  const auto shipped = drain(*outbox, "collector");
  ASSERT_EQ(shipped.size(), 10u);
  EXPECT_EQ(shipped.front().seq, 2u);
  EXPECT_EQ(*outbox->dictionary_entry(10), std::optional<std::string>("process 10"));
}

TEST(OutboxFileChange, ItsWalDeletedUnderItIsCopiedBackWithNothingLost) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = outbox_with_ten_batches(options_for(db));
  ASSERT_NE(outbox, nullptr);
  // The last batches are only in the -wal so far.
  fs::remove(db.string() + "-wal");
  auto lost = outbox->check_file(kT0 + kSecond);
  ASSERT_TRUE(lost) << lost.error().message();
  EXPECT_FALSE(*lost);
  EXPECT_EQ(read_batches(db).size(), 10u);
  EXPECT_EQ(drain(*outbox, "collector").size(), 10u);
}

TEST(OutboxFileChange, ReplacedByAnotherFileItsOwnComesBackAndTheOtherIsMovedAside) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = outbox_with_ten_batches(options_for(db));
  ASSERT_NE(outbox, nullptr);
  const fs::path other = dir / "other.db";
  { std::ofstream(other, std::ios::binary) << "someone else's file"; }
  fs::rename(other, db);  // mv other.db outbox.db

  auto lost = outbox->check_file(kT0 + kSecond);
  ASSERT_TRUE(lost) << lost.error().message();
  EXPECT_FALSE(*lost);
  EXPECT_EQ(read_batches(db).size(), 10u);
  const auto aside = beside(db, ".foreign-");
  ASSERT_EQ(aside.size(), 1u);
  std::ifstream in(aside[0], std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "someone else's file");
  EXPECT_EQ(drain(*outbox, "collector").size(), 10u);
}

TEST(OutboxFileChange, TruncatedUnderItKeepsItsIdentityAndDeclaresWhatEachSinkLost) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = outbox_with_ten_batches(options_for(db, {"a", "b"}));
  ASSERT_NE(outbox, nullptr);
  const std::string agent = outbox->agent_id();
  for (std::uint64_t seq = 1; seq <= 4; ++seq) ASSERT_TRUE(outbox->ack("a", seq));
  ASSERT_EQ(::truncate(db.c_str(), 0), 0);  // truncate -s 0 outbox.db

  auto lost = outbox->check_file(kT0 + kSecond);
  ASSERT_TRUE(lost) << lost.error().message();
  EXPECT_TRUE(*lost) << "the dictionary went with the file";
  EXPECT_EQ(outbox->agent_id(), agent);
  EXPECT_EQ(query(db, "SELECT value FROM meta WHERE key = 'agent_id'"), agent);
  EXPECT_EQ(beside(db, ".corrupt-").size(), 1u);  // what was left, kept aside

  // Each sink is told which of its seqs are gone: a had acked up to 4.
  const auto for_a = drain(*outbox, "a");
  ASSERT_EQ(for_a.size(), 1u);
  ASSERT_TRUE(for_a[0].gap.has_value());
  EXPECT_EQ(for_a[0].gap->reason, GapReason::outbox_lost);
  EXPECT_EQ(for_a[0].gap->first_seq, 5u);
  EXPECT_EQ(for_a[0].gap->last_seq, 10u);
  EXPECT_EQ(for_a[0].gap->samples, 100u);  // what the file held; b still needed 1 to 4
  const auto for_b = drain(*outbox, "b");
  ASSERT_EQ(for_b.size(), 1u);
  ASSERT_TRUE(for_b[0].gap.has_value());
  EXPECT_EQ(for_b[0].gap->first_seq, 1u);
  EXPECT_EQ(for_b[0].gap->last_seq, 10u);
  EXPECT_GT(for_a[0].seq, 10u);
  EXPECT_GT(for_b[0].seq, 10u);

  // Seqs go on; nothing is used twice.
  auto r = outbox->append(make_samples(3, "after"), kT0 + 2 * kSecond);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->first_seq, 13u);
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->gaps[static_cast<std::size_t>(GapReason::outbox_lost)].records, 2u);
  EXPECT_EQ(stats->gaps[static_cast<std::size_t>(GapReason::outbox_lost)].samples, 100u);
  EXPECT_NE(stats->last_file_change.find("truncated"), std::string::npos);
  EXPECT_NE(stats->last_file_change.find("seqs 1-10, 5-10"), std::string::npos)
      << stats->last_file_change;
  EXPECT_EQ(stats->file_problem, "");
}

TEST(OutboxFileChange, OverwrittenInPlaceIsLostAndDeclared) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = outbox_with_ten_batches(options_for(db));
  ASSERT_NE(outbox, nullptr);
  ASSERT_TRUE(outbox->check_file(kT0));  // the file is its own still
  {
    // Same inode, no shorter: only the content says it is not ours.
    const int fd = ::open(db.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const std::string junk(4096, 'j');
    ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
    ::close(fd);
  }
  auto lost = outbox->check_file(kT0 + kSecond);
  ASSERT_TRUE(lost) << lost.error().message();
  EXPECT_TRUE(*lost);
  const auto shipped = drain(*outbox, "collector");
  ASSERT_EQ(shipped.size(), 1u);
  ASSERT_TRUE(shipped[0].gap.has_value());
  EXPECT_EQ(shipped[0].gap->first_seq, 1u);
  EXPECT_EQ(shipped[0].gap->last_seq, 10u);
  EXPECT_EQ(shipped[0].gap->samples, 100u);
}

TEST(OutboxFileChange, AnAppendThatMayReferToLostEntriesFailsAndIsDeclared) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = outbox_with_ten_batches(options_for(db));
  ASSERT_NE(outbox, nullptr);
  ASSERT_EQ(::truncate(db.c_str(), 0), 0);
  // The writer did not check first: its records may name processes by keys
  // the new file does not hold, so they are not stored...
  auto r = outbox->append(make_samples(4, "refers to key 3"), kT0 + kSecond);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("recreated"), std::string::npos) << r.error().message();
  // ...but counted, and declared with the next append.
  auto next = outbox->append(make_samples(2, "named afresh"), kT0 + 2 * kSecond);
  ASSERT_TRUE(next) << next.error().message();
  const auto shipped = drain(*outbox, "collector");
  ASSERT_EQ(shipped.size(), 3u);  // outbox_lost, append_failed, the new batch
  EXPECT_EQ(shipped[0].gap->reason, GapReason::outbox_lost);
  ASSERT_TRUE(shipped[1].gap.has_value());
  EXPECT_EQ(shipped[1].gap->reason, GapReason::append_failed);
  EXPECT_EQ(shipped[1].gap->samples, 4u);
  EXPECT_EQ(shipped[2].sample_count, 2u);
}

TEST(OutboxFileChange, DeletedWhileClosedTheNewAgentNamesItsPredecessor) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  std::string old_agent;
  {
    auto outbox = outbox_with_ten_batches(options_for(db));
    ASSERT_NE(outbox, nullptr);
    old_agent = outbox->agent_id();
    for (std::uint64_t seq = 1; seq <= 6; ++seq) ASSERT_TRUE(outbox->ack("collector", seq));
  }
  remove_database(db);  // rm outbox.db*: the hidden lock file stays

  auto outbox = open_or_die(options_for(db), kT0 + kSecond);
  ASSERT_NE(outbox, nullptr);
  EXPECT_NE(outbox->agent_id(), old_agent);
  const auto shipped = drain(*outbox, "collector");
  ASSERT_EQ(shipped.size(), 1u);
  EXPECT_EQ(shipped[0].seq, 1u);  // the new agent's first batch
  ASSERT_TRUE(shipped[0].gap.has_value());
  const GapRecord& gap = *shipped[0].gap;
  EXPECT_EQ(gap.reason, GapReason::outbox_lost);
  EXPECT_EQ(gap.first_seq, 0u);
  EXPECT_EQ(gap.last_seq, 0u);
  EXPECT_EQ(gap.samples, 40u);  // batches 7 to 10 were not acked
  ASSERT_TRUE(gap.predecessor.has_value());
  EXPECT_EQ(*gap.predecessor, (GapPredecessor{old_agent, 10}));
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  ASSERT_TRUE(stats->predecessor.has_value());
  EXPECT_EQ(stats->predecessor->agent_id, old_agent);
  outbox.reset();

  // Declared once: the next open is of the same agent.
  auto again = open_or_die(options_for(db), kT0 + 2 * kSecond);
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(drain(*again, "collector").empty());
}

TEST(OutboxFileChange, AnOlderCopyPutBackDoesNotUseTheSameSeqsTwice) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  const fs::path copy = dir / "backup.db";
  {
    auto outbox = open_or_die(options_for(db));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  }
  fs::copy_file(db, copy);
  {
    auto outbox = open_or_die(options_for(db));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(outbox->append(make_samples(2, "b"), kT0));
  }
  remove_database(db);
  fs::copy_file(copy, db);  // restored from a backup: seqs 4 to 6 were used since

  auto outbox = open_or_die(options_for(db), kT0 + kSecond);
  ASSERT_NE(outbox, nullptr);
  const auto shipped = drain(*outbox, "collector");
  ASSERT_EQ(shipped.size(), 4u);
  ASSERT_TRUE(shipped[3].gap.has_value());
  EXPECT_EQ(shipped[3].seq, 7u);
  EXPECT_EQ(shipped[3].gap->reason, GapReason::outbox_lost);
  EXPECT_EQ(shipped[3].gap->first_seq, 4u);
  EXPECT_EQ(shipped[3].gap->last_seq, 6u);
  EXPECT_FALSE(shipped[3].gap->predecessor.has_value());
  auto r = outbox->append(make_samples(2, "c"), kT0 + kSecond);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first_seq, 8u);
}

TEST(OutboxFileChange, ItsLockFileDeletedUnderItIsLockedAgain) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  const fs::path lock = OutboxLock::path_for(db);
  ASSERT_TRUE(fs::exists(lock));
  fs::remove(lock);
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  EXPECT_TRUE(fs::exists(lock));
  EXPECT_FALSE(Outbox::open(options_for(db), kT0)) << "a second writer got in";
}

TEST(FileStamps, TellWhatHappenedToTheFiles) {
  OutboxStamps known;
  known.db = FileStamp{true, 1, 10, 8192, 100};
  known.wal = FileStamp{true, 1, 11, 4096, 100};
  known.shm = FileStamp{true, 1, 12, 32768, 100};
  EXPECT_EQ(compare_stamps(known, known), FileChange::none);
  OutboxStamps now = known;
  now.wal.size = 0;  // SQLite resets its WAL all the time
  EXPECT_EQ(compare_stamps(known, now), FileChange::none);
  now = known;
  now.db.exists = false;
  EXPECT_EQ(compare_stamps(known, now), FileChange::deleted);
  now = known;
  now.db.ino = 99;
  EXPECT_EQ(compare_stamps(known, now), FileChange::replaced);
  now = known;
  now.db.size = 4096;
  EXPECT_EQ(compare_stamps(known, now), FileChange::truncated);
  now = known;
  now.db.mtime_ns = 101;
  EXPECT_EQ(compare_stamps(known, now), FileChange::overwritten);
  now = known;
  now.wal.ino = 98;
  EXPECT_EQ(compare_stamps(known, now), FileChange::wal_removed);
  now = known;
  now.shm.exists = false;  // rebuilt from the WAL by SQLite: nothing lost
  EXPECT_EQ(compare_stamps(known, now), FileChange::none);
  EXPECT_TRUE(recoverable(FileChange::deleted));
  EXPECT_TRUE(recoverable(FileChange::replaced));
  EXPECT_TRUE(recoverable(FileChange::wal_removed));
  EXPECT_FALSE(recoverable(FileChange::truncated));
  EXPECT_FALSE(recoverable(FileChange::overwritten));
}

}  // namespace
}  // namespace tally::queue
