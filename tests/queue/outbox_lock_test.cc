// One writer per outbox, and files nobody else can read.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "files.h"
#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;
namespace fs = std::filesystem;

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(OutboxLock, ASecondOpenFailsNamingTheOutboxAndItsHolderAndChangesNothing) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto first = open_or_die(options_for(db));
  ASSERT_NE(first, nullptr);
  DictionaryUpdate update;
  update.added = {{1, "a live process"}};
  ASSERT_TRUE(first->append(make_samples(3, "a"), kT0, update));
  const auto before = tally::test::snapshot_files(dir.path());

  auto second = Outbox::open(options_for(db), kT0 + kSecond);
  ASSERT_FALSE(second) << "a second outbox opened the same file";
  const std::string message = second.error().message();
  EXPECT_NE(message.find(db.string()), std::string::npos) << message;
  EXPECT_NE(message.find(fmt::format("pid {}", ::getpid())), std::string::npos) << message;

  // Not a byte changed: the second opener never touched the database (it
  // would have retired the first one's dictionary entries).
  EXPECT_EQ(tally::test::snapshot_files(dir.path()), before);
  EXPECT_EQ(query(db, "SELECT live FROM dictionary"), "1");
  ASSERT_TRUE(first->append(make_samples(3, "b"), kT0 + kSecond));
  EXPECT_EQ(drain(*first, "collector").size(), 2u);

  // The lock goes with the outbox that holds it.
  first.reset();
  EXPECT_NE(open_or_die(options_for(db), kT0 + 2 * kSecond), nullptr);
}

TEST(OutboxLock, TheLockIsHeldAgainstOtherProcessesToo) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  const std::string msg = open_error_in_child(db, false);
  EXPECT_NE(msg, "opened");
  EXPECT_NE(msg.find(fmt::format("pid {}", ::getpid())), std::string::npos) << msg;
}

TEST(OutboxFiles, AreCreatedPrivateInADirectoryOnlyTheOwnerCanEnter) {
  ScratchDir dir;
  const mode_t umask_before = ::umask(022);  // the usual one: 0644 files, 0755 directories
  auto outbox = open_or_die(options_for(dir / "state" / "tally" / "outbox.db"));
  ::umask(umask_before);
  ASSERT_NE(outbox, nullptr);
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));  // the -wal and -shm exist now

  EXPECT_EQ(mode_of(dir / "state"), 0700u);
  EXPECT_EQ(mode_of(dir / "state" / "tally"), 0700u);
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "state" / "tally")) {
    EXPECT_EQ(mode_of(entry.path()), 0600u) << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 4u) << "outbox.db, its -wal and -shm, and the lock file";
}

TEST(OutboxFiles, AnOutboxOthersCouldReadIsMadePrivate) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  {
    auto outbox = open_or_die(options_for(db));
    ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  }
  fs::permissions(db, fs::perms(0644));  // as an older tally created it
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  EXPECT_EQ(mode_of(db), 0600u);
  EXPECT_EQ(drain(*outbox, "collector").size(), 1u);
}

}  // namespace
}  // namespace tally::queue
