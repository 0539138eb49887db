// Dictionary entries: stored with the append that brings them (one row per
// append), read back by key, and deleted only once no stored batch can refer
// to any key of their row.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;

std::string entry(Outbox& outbox, std::uint64_t key) {
  auto value = outbox.dictionary_entry(key);
  EXPECT_TRUE(value) << value.error().message();
  return value && *value ? **value : std::string("<none>");
}

std::string count_rows(const ScratchDir& dir) {
  return query(dir / "outbox.db", "SELECT count(*) FROM dictionary");
}

TEST(OutboxDictionary, EntriesAreStoredWithTheirAppendAndReadBackByKey) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  EXPECT_EQ(outbox->first_unused_dictionary_key(), 1u);
  DictionaryUpdate update;
  update.added = {{1, std::string("names of one\n\0 with any bytes", 29)}, {2, "two"}};
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0, update));
  EXPECT_EQ(entry(*outbox, 1), std::string("names of one\n\0 with any bytes", 29));
  EXPECT_EQ(entry(*outbox, 2), "two");
  EXPECT_EQ(entry(*outbox, 3), "<none>");
  EXPECT_EQ(outbox->first_unused_dictionary_key(), 3u);
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->dictionary_entries, 2u);
  EXPECT_EQ(stats->dictionary_bytes, 4u + 29 + 4 + 3);  // each entry's length, then its bytes
  EXPECT_EQ(count_rows(dir), "1");
}

TEST(OutboxDictionary, KeysOfOneAppendMustBeConsecutiveAndUnused) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  DictionaryUpdate gap;
  gap.added = {{1, "one"}, {3, "three"}};
  auto r = outbox->append(make_samples(1, "a"), kT0, gap);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("consecutive: 3 follows 1"), std::string::npos)
      << r.error().message();
  DictionaryUpdate ok;
  ok.added = {{1, "one"}, {2, "two"}};
  ASSERT_TRUE(outbox->append(make_samples(1, "a"), kT0, ok));
  DictionaryUpdate reused;
  reused.added = {{2, "again"}};
  EXPECT_FALSE(outbox->append(make_samples(1, "a"), kT0, reused));
  EXPECT_EQ(entry(*outbox, 2), "two");
}

TEST(OutboxDictionary, AFailedAppendStoresNoEntries) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  outbox->fail_next_commit_for_testing(SQLITE_FULL);
  DictionaryUpdate update;
  update.added = {{1, "one"}};
  EXPECT_FALSE(outbox->append(make_samples(2, "a"), kT0, update));
  EXPECT_EQ(entry(*outbox, 1), "<none>");
  EXPECT_EQ(count_rows(dir), "0");
}

TEST(OutboxDictionary, ARowGoesOnceEveryBatchThatCanReferToItsKeysIsAcked) {
  ScratchDir dir;
  auto outbox = open_or_die(options_for(dir / "outbox.db", {"collector", "backup"}));
  DictionaryUpdate first;
  first.added = {{1, "process"}, {2, "interval 1"}};
  first.retired = {2};
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0, first));  // batch 1
  DictionaryUpdate second;
  second.added = {{3, "interval 2"}};
  second.retired = {1, 3};  // the process exited in interval 2
  ASSERT_TRUE(outbox->append(make_samples(2, "b"), kT0, second));  // batch 2
  EXPECT_EQ(count_rows(dir), "2");

  ASSERT_TRUE(outbox->ack("collector", 1));
  ASSERT_TRUE(outbox->ack("backup", 1));  // batch 1 deleted
  // Batch 2 still refers to key 1, and so keeps its row, key 2 included.
  EXPECT_EQ(entry(*outbox, 1), "process");
  EXPECT_EQ(entry(*outbox, 2), "interval 1");
  EXPECT_EQ(entry(*outbox, 3), "interval 2");
  ASSERT_TRUE(outbox->ack("collector", 2));
  EXPECT_EQ(entry(*outbox, 1), "process") << "the backup sink has not sent batch 2 yet";
  ASSERT_TRUE(outbox->ack("backup", 2));
  EXPECT_EQ(count_rows(dir), "0");
}

TEST(OutboxDictionary, EntriesRetiredWhileSamplesAreStagedWaitForTheBatchThatHoldsThem) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.batch.max_age_ns = 60 * kSecond;  // appends are staged
  auto outbox = open_or_die(options);
  DictionaryUpdate update;
  update.added = {{1, "process"}};
  update.retired = {1};
  ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0, update));
  EXPECT_EQ(query(dir / "outbox.db", "SELECT coalesce(retired_seq, 'staged') FROM dictionary"),
            "staged");
  // A batch formed and acked meanwhile by another path must not free it.
  ASSERT_EQ(outbox->form_all(kT0 + kSecond).value(), 1);
  EXPECT_EQ(query(dir / "outbox.db", "SELECT retired_seq FROM dictionary"), "1");
  EXPECT_EQ(entry(*outbox, 1), "process");
  ASSERT_TRUE(outbox->ack("collector", 1));
  EXPECT_EQ(count_rows(dir), "0");
}

TEST(OutboxDictionary, EvictionUnderTheCapFreesTheEntriesOfWhatItRemoved) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.cap_bytes = 3 * 10 * 260;  // about three appends of 10 samples
  auto outbox = open_or_die(options);
  std::uint64_t key = 1;
  for (int i = 0; i < 10; ++i) {
    DictionaryUpdate update;
    update.added = {{key, "interval"}};
    update.retired = {key};
    ++key;
    ASSERT_TRUE(outbox->append(make_samples(10, "a"), kT0 + static_cast<std::uint64_t>(i), update));
  }
  // Only entries of batches still stored remain.
  EXPECT_EQ(query(dir / "outbox.db",
                  "SELECT count(*) FROM dictionary WHERE retired_seq < "
                  "(SELECT min(seq) FROM batches)"),
            "0");
  EXPECT_LT(std::stoi(count_rows(dir)), 10);
}

TEST(OutboxDictionary, AReopenRetiresWhatTheLastWriterLeftLiveAndKeysGoOnAboveIt) {
  ScratchDir dir;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db"));
    DictionaryUpdate update;
    update.added = {{5, "a live process"}, {6, "another"}};
    ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0, update));
  }
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  EXPECT_EQ(outbox->first_unused_dictionary_key(), 7u);
  EXPECT_EQ(query(dir / "outbox.db", "SELECT group_concat(retired_seq) FROM dictionary"), "1");
  EXPECT_EQ(entry(*outbox, 5), "a live process");  // batch 1 may still refer to it
  ASSERT_TRUE(outbox->ack("collector", 1));
  EXPECT_EQ(count_rows(dir), "0");
}

TEST(OutboxDictionary, AnOutboxOfSchema2IsUpgradedWithAnEmptyDictionary) {
  ScratchDir dir;
  {
    auto outbox = open_or_die(options_for(dir / "outbox.db"));
    ASSERT_TRUE(outbox->append(make_samples(2, "a"), kT0));
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "outbox.db").c_str(), &db), SQLITE_OK);
    // As version 2 left it: no dictionary, and the retry time version 4 dropped.
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE dictionary; ALTER TABLE deliveries ADD COLUMN "
                           "next_attempt_ns INTEGER NOT NULL DEFAULT 0; PRAGMA user_version = 2",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto outbox = open_or_die(options_for(dir / "outbox.db"));
  EXPECT_EQ(query(dir / "outbox.db", "PRAGMA user_version"), "4");
  EXPECT_EQ(drain(*outbox, "collector").size(), 1u);
  DictionaryUpdate update;
  update.added = {{1, "one"}};
  ASSERT_TRUE(outbox->append(make_samples(2, "b"), kT0, update));
  EXPECT_EQ(entry(*outbox, 1), "one");
}

}  // namespace
}  // namespace tally::queue

namespace tally::queue {
namespace {

using namespace testing;

// Processes with huge command lines, nothing shipped: their names are most
// of what is stored, so they are what the cap must hold back.
TEST(OutboxDictionary, LargeEntriesCountAgainstTheCapAndTheFileStaysNearIt) {
  ScratchDir dir;
  auto options = options_for(dir / "outbox.db");
  options.cap_bytes = 2 << 20;
  options.compress = false;  // as tallyd stores them
  auto outbox = open_or_die(options);
  const std::string names(64 << 10, 'c');  // 64 KiB of arguments each
  std::uint64_t key = 1;
  std::vector<std::uint64_t> running;
  const int intervals = 200;  // 64 MiB of names in all, 32 times the cap
  for (int i = 0; i < intervals; ++i) {
    DictionaryUpdate update;
    update.retired = running;  // last interval's processes exited
    running.clear();
    for (int p = 0; p < 5; ++p) {
      update.added.emplace_back(key, names);
      running.push_back(key++);
    }
    auto r = outbox->append(make_samples(5, "p", 20), kT0 + static_cast<std::uint64_t>(i), update);
    ASSERT_TRUE(r) << "interval " << i << ": " << r.error().message();
  }
  auto stats = outbox->stats(kT0);
  ASSERT_TRUE(stats);
  EXPECT_GT(stats->dictionary_bytes, 5u * names.size());
  EXPECT_LE(stats->dictionary_bytes, stats->stored_bytes) << "the names are not counted";
  EXPECT_LE(stats->stored_bytes, options.cap_bytes);
  const auto db = dir / "outbox.db";
  const std::uint64_t file =
      std::filesystem::file_size(db) + std::filesystem::file_size(db.string() + "-wal");
  EXPECT_LE(file, 2 * options.cap_bytes) << "the file grew past the cap";
  // What did not fit was declared, and what is left is readable.
  EXPECT_GT(stats->gaps[static_cast<std::size_t>(GapReason::cap)].samples, 0u);
  for (const std::uint64_t k : running) EXPECT_EQ(entry(*outbox, k), names);
}

}  // namespace
}  // namespace tally::queue
