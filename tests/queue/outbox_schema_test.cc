// Schema versions: upgrades run in order; newer files are quarantined.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "schema.h"
#include "test_support.h"

namespace tally::queue {
namespace {

using namespace testing;
namespace fs = std::filesystem;

TEST(OutboxSchema, EmptyDatabaseAtVersionZeroIsUpgradedToTheCurrentVersion) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  EXPECT_EQ(query(db, "PRAGMA user_version"), "0");  // creates an empty database file
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(outbox->stats(kT0)->schema_version, kSchemaVersion);
  EXPECT_EQ(outbox->stats(kT0)->quarantine_events, 0u);
  EXPECT_EQ(query(db, "PRAGMA journal_mode"), "wal");
}

TEST(OutboxSchema, MigrationStepsRunInOrderAndKeepTheData) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  {
    auto outbox = open_or_die(options_for(db));
    ASSERT_TRUE(outbox->append(make_samples(3, "v1"), kT0));
  }
  // A hypothetical next version that adds a column, to exercise the runner.
  std::vector<Migration> steps(schema_migrations().begin(), schema_migrations().end());
  steps.push_back({kSchemaVersion, [](sql::Database& d) {
                     return d.exec("ALTER TABLE batches ADD COLUMN encoding TEXT DEFAULT 'ndjson'");
                   }});
  auto raw = sql::Database::open(db, SQLITE_OPEN_READWRITE);
  ASSERT_TRUE(raw);
  auto migrated = migrate(*raw, steps);
  ASSERT_TRUE(migrated) << migrated.error().message();
  EXPECT_EQ(*raw->query_int("PRAGMA user_version"), kSchemaVersion + 1);
  EXPECT_EQ(*raw->query_text("SELECT encoding FROM batches WHERE seq = 1"), "ndjson");
  EXPECT_EQ(*raw->query_int("SELECT sample_count FROM batches WHERE seq = 1"), 3);
}

TEST(OutboxSchema, FailedMigrationStepLeavesTheVersionUnchanged) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  { ASSERT_NE(open_or_die(options_for(db)), nullptr); }
  std::vector<Migration> steps(schema_migrations().begin(), schema_migrations().end());
  steps.push_back({kSchemaVersion, [](sql::Database& d) {
                     auto s = d.exec("CREATE TABLE half_done(x)");
                     if (!s) return s;
                     return d.exec("THIS IS NOT SQL");
                   }});
  auto raw = sql::Database::open(db, SQLITE_OPEN_READWRITE);
  ASSERT_TRUE(raw);
  auto migrated = migrate(*raw, steps);
  ASSERT_FALSE(migrated);
  EXPECT_NE(migrated.error().message().find(
                fmt::format("from schema {} to {}", kSchemaVersion, kSchemaVersion + 1)),
            std::string::npos);
  EXPECT_EQ(*raw->query_int("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(*raw->query_int("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'"), 0);
}

TEST(OutboxSchema, NewerSchemaVersionIsQuarantined) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  { ASSERT_NE(open_or_die(options_for(db)), nullptr); }
  EXPECT_EQ(query(db, "PRAGMA user_version = 99"), "");
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  EXPECT_EQ(outbox->stats(kT0)->quarantine_events, 1u);
  EXPECT_EQ(query(dir / "outbox.db.corrupt-20240101T000000Z", "PRAGMA user_version"), "99");
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(kSchemaVersion));
}

TEST(OutboxSchema, SomeoneElsesDatabaseIsQuarantinedNotMigrated) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  EXPECT_EQ(query(db, "CREATE TABLE accounts(id)"), "");
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  EXPECT_EQ(outbox->stats(kT0)->quarantine_events, 1u);
  EXPECT_EQ(query(dir / "outbox.db.corrupt-20240101T000000Z",
                  "SELECT count(*) FROM sqlite_schema WHERE name = 'accounts'"),
            "1");
}

TEST(OutboxSchema, Version3FilesLoseTheirRetryTimesAndDeferredBatchesAreReadyAtOnce) {
  ScratchDir dir;
  const fs::path db = dir / "outbox.db";
  {
    auto outbox = open_or_die(options_for(db));
    ASSERT_TRUE(outbox->append(make_samples(3, "v3"), kT0));
    ASSERT_TRUE(outbox->fail("collector", 1, "HTTP 503"));
  }
  // Put the file back as version 3 wrote it: a retry time an hour ahead,
  // and the partial index over it.
  for (const std::string& sql :
       {std::string("ALTER TABLE deliveries ADD COLUMN next_attempt_ns INTEGER NOT NULL "
                    "DEFAULT 0"),
        std::string("CREATE INDEX deferred_deliveries ON deliveries(sink_id, next_attempt_ns) "
                    "WHERE next_attempt_ns > 0"),
        fmt::format("UPDATE deliveries SET next_attempt_ns = {}", kT0 + 3600 * kSecond),
        std::string("PRAGMA user_version = 3")}) {
    ASSERT_EQ(query(db, sql), "") << sql;
  }
  ASSERT_EQ(query(db, "SELECT count(*) FROM deliveries WHERE next_attempt_ns > 0"), "1");
  auto outbox = open_or_die(options_for(db));
  ASSERT_NE(outbox, nullptr);
  EXPECT_EQ(query(db, "PRAGMA user_version"), std::to_string(kSchemaVersion));
  EXPECT_EQ(query(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'deferred_deliveries'"),
            "0");
  EXPECT_EQ(query(db,
                  "SELECT count(*) FROM pragma_table_info('deliveries') "
                  "WHERE name = 'next_attempt_ns'"),
            "0");
  // The batch version 3 had deferred is ready now, its attempts and error kept.
  auto head = outbox->next_ready("collector");
  ASSERT_TRUE(head && head->has_value());
  EXPECT_EQ((*head)->seq, 1u);
  EXPECT_EQ((*head)->attempts, 1u);
  EXPECT_EQ((*head)->last_error, "HTTP 503");
}

}  // namespace
}  // namespace tally::queue
