// The store against real SQLite files: dedup per sample across any split,
// gap records, the seq bookkeeping behind /v1/agents, and failures that
// leave no trace.
#include "collector/batch_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/query_store.h"
#include "collector/request_decoder.h"
#include "collector_test_support.h"
#include "old_database.h"
#include "store_test_support.h"

namespace tally::collector {
namespace {

using test_support::count_rows;
using test_support::decoded;

BatchStore::Options store_options(const std::string& path, Durability durability,
                                  std::uint64_t max_page_count) {
  BatchStore::Options options;
  options.path = path;
  options.durability = durability;
  options.max_page_count = max_page_count;
  return options;
}

class BatchStoreTest : public test_support::StoreFixture {
 protected:
  AgentReport agent(const std::string& id) {
    auto agents = queries_->agents();
    EXPECT_TRUE(agents.ok());
    for (const auto& a : *agents) {
      if (a.agent_id == id) return a;
    }
    ADD_FAILURE() << "no agent " << id;
    return {};
  }

  // Samples stored: chunks hold runs of them (sample_chunk.h).
  std::int64_t rows() { return count_rows(db_, "SELECT coalesce(sum(samples), 0) FROM chunks"); }

  std::vector<std::string> lines_ = test::agent_lines("web-1", 1000, 10);
};

TEST_F(BatchStoreTest, StoresABatchAndCountsIt) {
  StoreOutcome o = store(test::samples_body("a", "web-1", 1, lines_));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(o.stored, 10u);
  EXPECT_EQ(rows(), 10);
  AgentReport a = agent("a");
  EXPECT_EQ(a.host, "web-1");
  EXPECT_EQ(a.last_seq, 1u);
  EXPECT_EQ(a.samples_stored, 10u);
  EXPECT_EQ(a.duplicates_rejected, 0u);
  EXPECT_TRUE(a.missing.empty());
  EXPECT_TRUE(a.partial.empty());
}

TEST_F(BatchStoreTest, SecondCopyIsADuplicateAndStoresNothing) {
  store(test::samples_body("a", "web-1", 1, lines_));
  StoreOutcome o = store(test::samples_body("a", "web-1", 1, lines_));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::duplicate);
  EXPECT_EQ(o.stored, 0u);
  EXPECT_EQ(rows(), 10);
  EXPECT_EQ(agent("a").duplicates_rejected, 10u);
  EXPECT_EQ(agent("a").samples_stored, 10u);
}

TEST_F(BatchStoreTest, DifferentSplitsOfOneBatchStoreEachSampleOnce) {
  // First a split into 4+3+3, of which the middle piece is lost, then the
  // agent re-sends as 5+5 (say after a restart), then the whole batch.
  EXPECT_EQ(store(test::samples_body("a", "h", 7, lines_, 0, 4)).stored, 4u);
  EXPECT_EQ(store(test::samples_body("a", "h", 7, lines_, 7, 3)).stored, 3u);
  AgentReport partial = agent("a");
  ASSERT_EQ(partial.partial.size(), 1u);
  EXPECT_EQ(partial.partial[0].seq, 7u);
  EXPECT_EQ(partial.partial[0].stored, 7u);
  EXPECT_EQ(partial.partial[0].batch_samples, 10u);

  StoreOutcome first_half = store(test::samples_body("a", "h", 7, lines_, 0, 5));
  EXPECT_EQ(first_half.kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(first_half.stored, 1u);  // only index 4 is new
  StoreOutcome second_half = store(test::samples_body("a", "h", 7, lines_, 5, 5));
  EXPECT_EQ(second_half.stored, 2u);  // indexes 5 and 6
  StoreOutcome whole = store(test::samples_body("a", "h", 7, lines_));
  EXPECT_EQ(whole.kind, StoreOutcome::Kind::duplicate);

  EXPECT_EQ(rows(), 10);
  EXPECT_EQ(count_rows(db_, "SELECT sum(samples) FROM chunks WHERE seq = 7"), 10);
  AgentReport a = agent("a");
  EXPECT_EQ(a.samples_stored, 10u);
  EXPECT_EQ(a.duplicates_rejected, 4u + 3u + 10u);
  EXPECT_TRUE(a.partial.empty());
}

TEST_F(BatchStoreTest, MissingListsHolesAndGapRecordsSuppressThem) {
  for (std::uint64_t seq : {1, 2, 3, 6, 7, 10}) {
    store(test::samples_body("a", "h", seq, lines_, 0, 1));
  }
  EXPECT_EQ(agent("a").missing, (std::vector<SeqRange>{{4, 5}, {8, 9}}));
  EXPECT_EQ(agent("a").partial.size(), 6u);

  // The agent declares 4..5 lost (its seq 11) and some samples that never
  // got a seq (seq 12).
  store(test::gap_body("a", "h", 11, 4, 5, 2000, "cap"));
  store(test::gap_body("a", "h", 12, 0, 0, 500, "disk_full"));
  AgentReport a = agent("a");
  EXPECT_EQ(a.last_seq, 12u);
  EXPECT_EQ(a.missing, (std::vector<SeqRange>{{8, 9}}));
  ASSERT_EQ(a.declared_lost.size(), 2u);
  EXPECT_EQ(a.declared_lost[0].gap.first_seq, 4u);
  EXPECT_EQ(a.declared_lost[0].gap.samples, 2000u);
  EXPECT_EQ(a.declared_lost[0].gap.reason, "cap");
  EXPECT_EQ(a.declared_lost[1].gap.first_seq, 0u);

  // Seq 8 and 9 arrive late, filling the last hole; the received ranges
  // merge into one row per run.
  store(test::samples_body("a", "h", 9, lines_, 0, 1));
  store(test::samples_body("a", "h", 8, lines_, 0, 1));
  EXPECT_TRUE(agent("a").missing.empty());
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM received"), 2);  // 1..3 and 6..12
}

TEST_F(BatchStoreTest, RepeatedGapRecordIsADuplicate) {
  EXPECT_EQ(store(test::gap_body("a", "h", 5, 1, 4, 10, "cap")).kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(store(test::gap_body("a", "h", 5, 1, 4, 10, "cap")).kind,
            StoreOutcome::Kind::duplicate);
  EXPECT_EQ(agent("a").declared_lost.size(), 1u);
}

TEST_F(BatchStoreTest, ConflictingReuseOfASeqIsRefusedAndRolledBack) {
  store(test::samples_body("a", "h", 1, lines_));
  StoreOutcome gap = store(test::gap_body("a", "h", 1, 0, 0, 5, "cap"));
  EXPECT_EQ(gap.kind, StoreOutcome::Kind::conflict);
  EXPECT_EQ(gap.why, "seq 1 was received as a samples batch");
  auto other = test::agent_lines("h", 5, 3);
  StoreOutcome resized = store(test::samples_body("a", "h", 1, other));
  EXPECT_EQ(resized.kind, StoreOutcome::Kind::conflict);
  EXPECT_EQ(resized.why, "seq 1 was received with batch_samples 10, now 3");
  EXPECT_TRUE(agent("a").declared_lost.empty());
  EXPECT_EQ(rows(), 10);
}

TEST_F(BatchStoreTest, AgentsAreKeptApart) {
  store(test::samples_body("a", "h", 1, lines_));
  StoreOutcome o = store(test::samples_body("b", "h", 1, lines_));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(rows(), 20);
}

TEST_F(BatchStoreTest, SamplesComeBackByHostPidAndTime) {
  store(test::samples_body("a", "web-1", 1, test::agent_lines("web-1", 1000, 5)));
  store(test::samples_body("a", "web-1", 2, test::agent_lines("web-1", 2000, 5)));
  store(test::samples_body("b", "web-2", 1, test::agent_lines("web-2", 1500, 5)));
  SampleQuery q;
  q.host = "web-1";
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->json.size(), 10u);
  q.pid = 101;
  q.from = 1000;
  q.to = 2000;  // exclusive
  rows = queries_->samples(q);
  ASSERT_EQ(rows->json.size(), 1u);
  EXPECT_EQ(rows->json[0], test::agent_lines("web-1", 1000, 5)[1]);
  SampleQuery all;
  all.limit = 4;
  rows = queries_->samples(all);
  ASSERT_EQ(rows->json.size(), 4u);
  EXPECT_TRUE(rows->truncated);
  EXPECT_EQ(nlohmann::json::parse(rows->json[3])["ts_ns"], 1000);
}

TEST_F(BatchStoreTest, FullDatabaseFailsTheWholeRequestAndLeavesNoTrace) {
  store_.reset();
  auto small =
      BatchStore::open(store_options(db_, Durability::normal, 200));  // 200 pages of 16 KiB
  ASSERT_TRUE(small.ok()) << small.error().message();
  std::optional<Error> failure;
  std::uint64_t seq = 1;
  for (; seq < 50 && !failure; ++seq) {
    // New processes in every batch: their names take room (samples hardly do).
    auto big = test::agent_lines("h", 1, 1000, static_cast<std::uint32_t>(seq * 1000));
    auto o = (*small)->store(decoded(test::samples_body("a", "h", seq, big)));
    if (!o.ok()) failure = o.error();
  }
  ASSERT_TRUE(failure) << "the page budget never ran out";
  EXPECT_NE(failure->message().find("database or disk is full"), std::string::npos)
      << failure->message();
  EXPECT_NE(failure->message().find("store agent a seq"), std::string::npos);
  std::uint64_t failed_seq = seq - 1;
  ASSERT_GT(failed_seq, 1u) << "the first batch should have fit";
  EXPECT_EQ(
      count_rows(db_, "SELECT count(*) FROM chunks WHERE seq = " + std::to_string(failed_seq)), 0);
  EXPECT_EQ(
      count_rows(db_, "SELECT count(*) FROM batches WHERE seq = " + std::to_string(failed_seq)), 0);
  EXPECT_EQ(rows(), static_cast<std::int64_t>((failed_seq - 1) * 1000));
}

TEST_F(BatchStoreTest, CheckpointsTheWalInTheBackground) {
  // Auto-checkpoints are off on the writer, so the database file itself only
  // grows when the background checkpointer copies the WAL into it.
  const auto initial = std::filesystem::file_size(db_);
  for (std::uint64_t seq = 1; seq <= 200; ++seq) {
    // New processes in every batch: their names fill the WAL (samples hardly do).
    auto big = test::agent_lines("h", 1, 1000, static_cast<std::uint32_t>(seq * 1000));
    ASSERT_EQ(store(test::samples_body("a", "h", seq, big)).stored, 1000u);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::filesystem::file_size(db_) < initial + (8u << 20) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(std::filesystem::file_size(db_), initial + (8u << 20))
      << "WAL " << std::filesystem::file_size(db_ + "-wal") << " bytes";
}

TEST_F(BatchStoreTest, RefusesADatabaseFromANewerCollector) {
  store_.reset();
  queries_.reset();
  sqlite3* db = nullptr;
  sqlite3_open(db_.c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto store = BatchStore::open(store_options(db_, Durability::full, 0));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message().find("schema version 99"), std::string::npos)
      << store.error().message();
}

TEST_F(BatchStoreTest, SamplesThatLeaveOutTheirNamesAreStoredWithTheNamesSentBefore) {
  ASSERT_EQ(store(test::version2(test::samples_body("a", "web-1", 1, lines_))).stored, 10u);
  const auto later = test::agent_lines("web-1", 2000, 10);
  StoreOutcome o =
      store(test::version2(test::samples_body("a", "web-1", 2, test::without_names(later))));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(o.stored, 10u);

  SampleQuery q;
  q.from = 2000;
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->json.size(), 10u);
  // What is stored is the full sample, names and all, whatever the order.
  for (const auto& line : later) {
    const auto want = nlohmann::json::parse(line);
    bool found = false;
    for (const auto& stored : rows->json) found = found || nlohmann::json::parse(stored) == want;
    EXPECT_TRUE(found) << "not stored as sent in full: " << line;
  }
}

TEST_F(BatchStoreTest, NamesItDoesNotHoldStoreNothingAndNameTheProcesses) {
  StoreOutcome o =
      store(test::version2(test::samples_body("a", "web-1", 1, test::without_names(lines_))));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::unknown_processes);
  EXPECT_EQ(o.unknown_count, 9u);  // 9 process lines and a host line
  ASSERT_FALSE(o.unknown.empty());
  EXPECT_EQ(o.unknown[0].pid, 100u);
  EXPECT_EQ(o.unknown[0].start_time_ns, 1'600'000'000'000'000'100u);
  EXPECT_NE(o.why.find("pid 100"), std::string::npos) << o.why;
  EXPECT_EQ(rows(), 0);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM batches"), 0) << "the seq is not received";

  // The agent sends the same batch again with every name: stored whole.
  o = store(test::version2(test::samples_body("a", "web-1", 1, lines_)));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(o.stored, 10u);
}

TEST_F(BatchStoreTest, ADuplicateStillRecordsTheNamesItCarries) {
  // The agent takes any 2xx as "the collector holds these names", so a
  // duplicate that carries new names (after an exec) must record them too.
  store(test::version2(test::samples_body("a", "web-1", 1, lines_)));
  std::vector<std::string> renamed = lines_;
  const std::string old_comm = R"("comm":"worker-100")";
  renamed[0].replace(renamed[0].find(old_comm), old_comm.size(), R"("comm":"renamed")");
  EXPECT_EQ(store(test::version2(test::samples_body("a", "web-1", 1, renamed))).kind,
            StoreOutcome::Kind::duplicate);

  const auto later = test::agent_lines("web-1", 2000, 2, 100, false);
  ASSERT_EQ(
      store(test::version2(test::samples_body("a", "web-1", 2, test::without_names(later)))).stored,
      2u);
  SampleQuery q;
  q.from = 2000;
  q.pid = 100;
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->json.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(rows->json[0])["comm"], "renamed");
}

TEST_F(BatchStoreTest, AStoredExitForgetsTheProcessNames) {
  store(test::version2(test::samples_body("a", "web-1", 1, lines_)));
  auto exit_line = nlohmann::ordered_json::parse(lines_[0]);
  exit_line["exited"] = true;
  ASSERT_EQ(store(test::version2(
                      test::samples_body("a", "web-1", 2, {test::without_names(exit_line.dump())})))
                .stored,
            1u)
      << "an exit may itself leave the names out";
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM process_names WHERE pid = 100"), 0);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM process_names"), 8);

  StoreOutcome o =
      store(test::version2(test::samples_body("a", "web-1", 3, {test::without_names(lines_[0])})));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::unknown_processes);
}

TEST_F(BatchStoreTest, NamesAreKeptPerAgent) {
  store(test::version2(test::samples_body("a", "web-1", 1, lines_)));
  StoreOutcome o =
      store(test::version2(test::samples_body("b", "web-1", 1, test::without_names(lines_))));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::unknown_processes);
}

// A database an older collector left behind, opened by this one.
class UpgradeTest : public BatchStoreTest {
 protected:
  void SetUp() override {}  // each test writes its old database first, then open_stores()

  std::vector<nlohmann::json> served(std::uint64_t from, std::uint64_t to) {
    SampleQuery q;
    q.from = from;
    q.to = to;
    auto rows = queries_->samples(q);
    EXPECT_TRUE(rows.ok()) << rows.error().message();
    std::vector<nlohmann::json> out;
    for (const auto& r : rows->json) out.push_back(nlohmann::json::parse(r));
    return out;
  }

  static std::vector<nlohmann::json> parsed(const std::vector<std::string>& lines) {
    std::vector<nlohmann::json> out;
    for (const auto& l : lines) out.push_back(nlohmann::json::parse(l));
    return out;
  }
};

TEST_F(UpgradeTest, AVersion1DatabaseKeepsItsSamplesAndTakesNewOnes) {
  test::write_old_database(db_, 1, "a", "web-1", lines_);
  open_stores();
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(rows(), 10);
  EXPECT_EQ(served(0, 1001), parsed(lines_)) << "the old rows, names in their JSON";
  const auto later = test::agent_lines("web-1", 2000, 10);
  EXPECT_EQ(store(test::version2(test::samples_body("a", "web-1", 2, later))).stored, 10u);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM process_names"), 9);
  EXPECT_EQ(served(2000, 2001), parsed(later));
  EXPECT_EQ(agent("a").samples_stored, 20u);
}

TEST_F(UpgradeTest, AVersion3DatabaseKeepsTheCurrentNamesItHolds) {
  // Recorded an hour ago: not old enough to be forgotten.
  const auto recorded =
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::system_clock::now().time_since_epoch() - std::chrono::hours(1))
          .count();
  // As an old collector received them: lines of a tallyd of its time.
  const auto old_lines =
      test::agent_lines("web-1", 1000, 10, 100, true, samples::Form::first_release);
  test::write_old_database(db_, 3, "a", "web-1", old_lines, static_cast<std::uint64_t>(recorded));
  open_stores();
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names"), 9);
  EXPECT_EQ(count_rows(db_, "SELECT min(recorded_ns) FROM process_names"), recorded);
  // The agent refers to the names the old collector acknowledged.
  const auto later = test::agent_lines("web-1", 2000, 10, 100, true, samples::Form::first_release);
  const StoreOutcome o =
      store(test::version2(test::samples_body("a", "web-1", 2, test::without_names(later))));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored) << o.why;
  EXPECT_EQ(served(2000, 2001), parsed(later));
  EXPECT_EQ(served(0, 1001), parsed(old_lines));

  // /v1/top reads names from old rows and new ones alike.
  TopQuery q;
  q.from = 0;
  auto top = queries_->top(q);
  ASSERT_TRUE(top.ok()) << top.error().message();
  ASSERT_FALSE(top->top.empty());
  EXPECT_EQ(top->top[0].comm, "worker-108");
  EXPECT_EQ(top->top[0].cpu_ns, 18000u) << "9000 before the upgrade and 9000 after";
  q.to = 1001;
  top = queries_->top(q);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->top[0].cmdline, "/usr/bin/worker --id 108 --config /etc/worker.conf");
}

// What a version 4 collector served for the database old_database.h writes:
// odd process lines (sent without names) with the names at the end.
std::vector<std::string> served_by_version4(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const auto comm = line.find(",\"comm\":");
    if (i % 2 == 0 || comm == std::string::npos) {
      out.push_back(line);
      continue;
    }
    const auto cpu = line.find(",\"cpu_ns\":");
    std::string without = line.substr(0, comm) + line.substr(cpu);
    out.push_back(without.substr(0, without.size() - 1) + line.substr(comm, cpu - comm) + "}");
  }
  return out;
}

TEST_F(UpgradeTest, AVersion4DatabaseMovesItsRowsIntoChunksAndServesThemAsBefore) {
  const auto lines = test::agent_lines("web-1", 1000, 200, 100, true, samples::Form::first_release);
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  test::write_old_database(db_, 4, "a", "web-1", lines, static_cast<std::uint64_t>(now));
  open_stores();
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM sqlite_master WHERE name = 'samples'"), 0);
  EXPECT_EQ(count_rows(db_, "SELECT sum(samples) FROM chunks"), 200);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM chunks"), 1) << "one batch, one host: one chunk";
  // Each sample as integers: no JSON text is left in the chunk.
  EXPECT_EQ(test_support::verbatim_samples(db_), 0);
  SampleQuery q;
  q.to = 1001;
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  EXPECT_EQ(rows->json, served_by_version4(lines));
  EXPECT_EQ(agent("a").samples_stored, 200u);
  // The agent carries on, referring to the names the old collector holds.
  const auto later = test::agent_lines("web-1", 2000, 200);
  const StoreOutcome o =
      store(test::version2(test::samples_body("a", "web-1", 2, test::without_names(later))));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored) << o.why;
  EXPECT_EQ(o.stored, 200u);
}

TEST_F(UpgradeTest, AnUpgradeThatFailsHalfWayLeavesVersion4ForTheNextStart) {
  const auto lines =
      test::agent_lines("web-1", 1000, 2000, 100, true, samples::Form::first_release);
  test::write_old_database(db_, 4, "a", "web-1", lines);
  const auto pages = count_rows(db_, "PRAGMA page_count");
  // One page more than the old file: the upgrade's transaction runs out of
  // room as on a full disk, after it began changing the schema.
  auto failed =
      BatchStore::open(store_options(db_, Durability::full, static_cast<std::uint64_t>(pages) + 1));
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message().find("upgrade schema from version 4"), std::string::npos)
      << failed.error().message();
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), 4);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM samples"), 2000);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM sqlite_master WHERE name = 'chunks'"), 0);
  open_stores();
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), kSchemaVersion);
  SampleQuery q;
  q.to = 1001;
  q.limit = 5000;
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  EXPECT_EQ(rows->json, served_by_version4(lines));
}

// A store whose clock the test sets, with process names kept for 10 hours.
class AgingNamesTest : public BatchStoreTest {
 protected:
  static constexpr std::uint64_t kHour = 3600ull * 1'000'000'000;
  static constexpr std::uint64_t kT0 = 1'800'000'000ull * 1'000'000'000;

  void SetUp() override {
    BatchStoreTest::SetUp();
    reopen();
  }

  void reopen() {
    store_.reset();
    BatchStore::Options options = store_options(db_, Durability::normal, 0);
    options.names_max_age_ns = 10 * kHour;
    options.clock = [this] { return now_; };
    auto store = BatchStore::open(options);
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(store).value();
  }

  std::int64_t recorded_hours_after_t0() {
    const std::int64_t ns =
        count_rows(db_, "SELECT max(recorded_ns) FROM process_names WHERE pid = 100");
    return (ns - static_cast<std::int64_t>(kT0)) / static_cast<std::int64_t>(kHour);
  }

  std::uint64_t now_ = kT0;
};

TEST_F(AgingNamesTest, NamesNotSentAgainForTheMaximumAgeAreForgottenAndAskedForAgain) {
  ASSERT_EQ(store(test::version2(test::samples_body("a", "web-1", 1, lines_))).kind,
            StoreOutcome::Kind::stored);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM process_names"), 9);  // the host line has none
  now_ = kT0 + 9 * kHour;
  EXPECT_EQ(
      store(test::version2(test::samples_body("a", "web-1", 2, test::without_names(lines_)))).kind,
      StoreOutcome::Kind::stored);

  now_ = kT0 + 11 * kHour;
  const std::string later =
      test::version2(test::samples_body("a", "web-1", 3, test::without_names(lines_)));
  EXPECT_EQ(store(later).kind, StoreOutcome::Kind::unknown_processes);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM process_names"), 0);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM chunks WHERE seq = 3"), 0);
  // What the agent does after the 409: the same batch with its names.
  EXPECT_EQ(store(test::version2(test::samples_body("a", "web-1", 3, lines_))).stored, 10u);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM process_names"), 9);  // the host line has none
}

TEST_F(AgingNamesTest, NamesSentAgainAreRecordedAgainAtMostOncePerHalfTheAge) {
  store(test::version2(test::samples_body("a", "web-1", 1, lines_)));
  EXPECT_EQ(recorded_hours_after_t0(), 0);
  now_ = kT0 + 4 * kHour;  // under half of 10 h: the row is not rewritten
  store(test::version2(test::samples_body("a", "web-1", 2, lines_)));
  EXPECT_EQ(recorded_hours_after_t0(), 0);
  now_ = kT0 + 6 * kHour;
  store(test::version2(test::samples_body("a", "web-1", 3, lines_)));
  EXPECT_EQ(recorded_hours_after_t0(), 6);

  now_ = kT0 + 12 * kHour;  // 12 h after the first send, 6 h after the last
  EXPECT_EQ(
      store(test::version2(test::samples_body("a", "web-1", 4, test::without_names(lines_)))).kind,
      StoreOutcome::Kind::stored);
}

TEST_F(AgingNamesTest, AnUpgradeFromVersion2DatesTheNamesItFindsAtTheUpgrade) {
  store_.reset();
  queries_.reset();
  std::filesystem::remove(db_);
  std::filesystem::remove(db_ + "-wal");
  std::filesystem::remove(db_ + "-shm");
  test::write_old_database(db_, 2, "a", "web-1", lines_);

  now_ = kT0 + 100 * kHour;
  reopen();
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(recorded_hours_after_t0(), 100);
  now_ = kT0 + 105 * kHour;
  EXPECT_EQ(
      store(test::version2(test::samples_body("a", "web-1", 2, test::without_names(lines_)))).kind,
      StoreOutcome::Kind::stored);
}

// Credentials: each agent id belongs to the credential that first wrote it.
class CredentialTest : public BatchStoreTest {
 protected:
  StoreOutcome store_as(const std::string& credential, const std::string& body) {
    auto outcome = store_->store(decoded(body), credential);
    if (!outcome.ok()) {
      ADD_FAILURE() << outcome.error().message();
      return {};
    }
    return *outcome;
  }

  // Everything the database holds, as text, to show that nothing changed.
  std::string snapshot() {
    std::string out;
    for (const char* table : {"agents", "received", "batches", "gaps", "samples", "process_names",
                              "successions", "hosts"}) {
      sqlite3* db = nullptr;
      sqlite3_open_v2(db_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
      sqlite3_stmt* stmt = nullptr;
      std::string sql = std::string("SELECT * FROM ") + table + " ORDER BY 1, 2, 3";
      sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
      out += table;
      out += ":\n";
      while (sqlite3_step(stmt) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
          const unsigned char* text = sqlite3_column_text(stmt, c);
          out += text ? reinterpret_cast<const char*>(text) : "NULL";
          out += '|';
        }
        out += '\n';
      }
      sqlite3_finalize(stmt);
      sqlite3_close(db);
    }
    return out;
  }
};

TEST_F(CredentialTest, AnAgentIsBoundToTheCredentialOfItsFirstRequest) {
  EXPECT_EQ(store_as("web-1", test::samples_body("a", "web-1", 1, lines_)).kind,
            StoreOutcome::Kind::stored);
  EXPECT_EQ(agent("a").credential, "web-1");
  EXPECT_EQ(store_as("web-1", test::samples_body("a", "web-1", 2, lines_)).kind,
            StoreOutcome::Kind::stored);
}

TEST_F(CredentialTest, AnotherCredentialIsForbiddenAndChangesNothing) {
  ASSERT_EQ(store_as("web-1", test::version2(test::samples_body("a", "web-1", 1, lines_))).stored,
            10u);
  ASSERT_EQ(store_as("web-1", test::gap_body("a", "web-1", 2, 0, 0, 5, "disk_full")).kind,
            StoreOutcome::Kind::stored);
  const std::string before = snapshot();

  // What an attacker holding web-2's token would send as agent a: its next
  // seq, a copy of a stored seq, a gap record at a seq, a piece, and
  // process names (protocol 2) for a's processes, new and duplicate.
  auto evil = test::agent_lines("evil-host", 1000, 10);
  for (auto& line : evil) {
    const std::string comm = "\"comm\":\"worker-";
    if (auto at = line.find(comm); at != std::string::npos)
      line.replace(at, comm.size(), "\"comm\":\"EVIL-");
  }
  const std::vector<std::string> attacks = {
      test::samples_body("a", "evil-host", 3, evil),
      test::samples_body("a", "evil-host", 1, evil),
      test::version2(test::samples_body("a", "evil-host", 1, evil)),
      test::version2(test::samples_body("a", "evil-host", 3, evil)),
      test::samples_body("a", "evil-host", 4, evil, 2, 3),
      test::gap_body("a", "evil-host", 3, 0, 0, 1, "cap"),
      test::gap_body("a", "evil-host", 2, 0, 0, 5, "disk_full"),
      test::successor_gap_body("a", "evil-host", 5, "b", 3, 0),
  };
  for (const std::string& body : attacks) {
    StoreOutcome o = store_as("web-2", body);
    EXPECT_EQ(o.kind, StoreOutcome::Kind::forbidden) << body.substr(0, 120);
    EXPECT_EQ(o.why,
              "agent_id \"a\" is bound to another credential than \"web-2\", the one this "
              "request's token belongs to: an agent keeps the credential it first wrote with");
    EXPECT_EQ(o.bound_credential, "web-1");
    EXPECT_EQ(snapshot(), before) << body.substr(0, 120);
  }

  // The agent itself carries on: its seq 3 is new, and refers to the names
  // it sent, not to the attacker's.
  StoreOutcome next = store_as(
      "web-1", test::version2(test::samples_body("a", "web-1", 3, test::without_names(lines_))));
  EXPECT_EQ(next.kind, StoreOutcome::Kind::stored);
  EXPECT_EQ(next.stored, 10u);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names WHERE names LIKE '%EVIL%'"), 0);
  EXPECT_EQ(agent("a").host, "web-1");
}

TEST_F(CredentialTest, AHostNameIsBoundToTheCredentialThatFirstWroteIt) {
  ASSERT_EQ(store_as("web-1", test::samples_body("a", "web-1", 1, lines_)).kind,
            StoreOutcome::Kind::stored);
  const std::string before = snapshot();
  // Another credential's new agent, writing as host web-1: in the envelope,
  // in its samples only (the queries filter on those), or in a gap record.
  auto elsewhere = test::agent_lines("web-2", 1000, 10);
  std::vector<std::string> mixed = elsewhere;
  mixed[3] = lines_[3];
  for (const std::string& body :
       {test::samples_body("b", "web-1", 1, elsewhere), test::samples_body("b", "web-2", 1, lines_),
        test::samples_body("b", "web-2", 1, mixed),
        test::gap_body("b", "web-1", 1, 0, 0, 1, "cap")}) {
    StoreOutcome o = store_as("web-2", body);
    EXPECT_EQ(o.kind, StoreOutcome::Kind::forbidden) << body.substr(0, 200);
    EXPECT_EQ(o.why,
              "host \"web-1\" is bound to another credential than \"web-2\", the one this "
              "request's token belongs to: a host name keeps the credential that first wrote it");
    EXPECT_EQ(snapshot(), before) << "not even agent b is added";
  }
  EXPECT_EQ(store_as("web-2", test::samples_body("b", "web-2", 1, elsewhere)).kind,
            StoreOutcome::Kind::stored);
  // The same credential's next agent (after its outbox was lost) may.
  EXPECT_EQ(store_as("web-1", test::samples_body("a2", "web-1", 1, lines_)).kind,
            StoreOutcome::Kind::stored);
}

TEST_F(CredentialTest, WithoutAuthenticationNothingIsBoundOrChecked) {
  store(test::samples_body("a", "web-1", 1, lines_));
  EXPECT_EQ(agent("a").credential, std::nullopt);
  EXPECT_EQ(store(test::samples_body("a", "web-1", 2, lines_)).kind, StoreOutcome::Kind::stored);
}

TEST_F(CredentialTest, AnAgentFromBeforeAuthenticationIsBoundByItsNextRequest) {
  store(test::samples_body("a", "web-1", 1, lines_));
  EXPECT_EQ(store_as("web-1", test::samples_body("a", "web-1", 1, lines_)).kind,
            StoreOutcome::Kind::duplicate)
      << "a duplicate binds too";
  EXPECT_EQ(agent("a").credential, "web-1");
  EXPECT_EQ(store_as("web-2", test::samples_body("a", "web-1", 2, lines_)).kind,
            StoreOutcome::Kind::forbidden);
}

TEST_F(CredentialTest, ARefusedFirstRequestBindsNothing) {
  // A 409 rolls back everything, the new agent's binding included.
  StoreOutcome o = store_as(
      "web-1", test::version2(test::samples_body("a", "web-1", 1, test::without_names(lines_))));
  ASSERT_EQ(o.kind, StoreOutcome::Kind::unknown_processes);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM agents"), 0);
}

TEST_F(CredentialTest, UpgradesAVersion3DatabaseAndBindsItsAgentsOnTheirNextRequest) {
  store_.reset();
  queries_.reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db_ + suffix);
  test::write_old_database(db_, 3, "a", "web-1", lines_);

  SetUp();  // reopens: the upgrade
  EXPECT_EQ(count_rows(db_, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(rows(), 10);
  EXPECT_EQ(agent("a").credential, std::nullopt);
  EXPECT_EQ(store_as("web-1", test::samples_body("a", "web-1", 2, lines_)).stored, 10u);
  EXPECT_EQ(agent("a").credential, "web-1");
  EXPECT_EQ(store_as("web-2", test::samples_body("a", "web-1", 3, lines_)).kind,
            StoreOutcome::Kind::forbidden);
  EXPECT_EQ(store_as("web-2", test::samples_body("b", "web-1", 1, lines_)).kind,
            StoreOutcome::Kind::forbidden)
      << "the host was bound with the agent";
}

TEST_F(CredentialTest, RebindFromMovesAgentsAndHostsOfASharedCredentialToTheirOwn) {
  // A fleet that shared one token, "shared"...
  store_as("shared", test::samples_body("a", "web-1", 1, lines_));
  store_as("shared", test::samples_body("b", "web-2", 1, test::agent_lines("web-2", 1000, 10)));
  store_.reset();
  BatchStore::Options options = store_options(db_, Durability::normal, 0);
  options.rebind_from = {"shared"};
  auto reopened = BatchStore::open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.error().message();
  store_ = std::move(reopened).value();

  // ...moves to a token per agent: each agent's next request takes it over.
  EXPECT_EQ(store_as("web-1", test::samples_body("a", "web-1", 2, lines_)).kind,
            StoreOutcome::Kind::stored);
  EXPECT_EQ(agent("a").credential, "web-1");
  EXPECT_EQ(count_rows(db_,
                       "SELECT count(*) FROM hosts WHERE host = 'web-1' AND "
                       "credential = 'web-1'"),
            1);
  // Once moved, neither the old credential nor another may write as it.
  EXPECT_EQ(store_as("shared", test::samples_body("a", "web-1", 3, lines_)).kind,
            StoreOutcome::Kind::forbidden);
  EXPECT_EQ(store_as("web-2", test::samples_body("a", "web-1", 3, lines_)).kind,
            StoreOutcome::Kind::forbidden);
  // An agent not moved yet still writes with the shared token.
  EXPECT_EQ(
      store_as("shared", test::samples_body("b", "web-2", 2, test::agent_lines("web-2", 2000, 10)))
          .kind,
      StoreOutcome::Kind::stored);
  EXPECT_EQ(agent("b").credential, "shared");
}

// Successions: an agent whose outbox was lost continues its predecessor.
using SuccessionTest = CredentialTest;

TEST_F(SuccessionTest, ThePredecessorsReportShowsWhatItsSuccessorDeclaredLost) {
  for (std::uint64_t seq : {1, 2, 3, 5})
    store_as("web-1", test::samples_body("old", "h", seq, lines_));
  EXPECT_EQ(agent("old").missing, (std::vector<SeqRange>{{4, 4}}));
  // The agent had seqs up to 8 when its outbox was lost: 4 and 6..8 are gone.
  StoreOutcome o = store_as("web-1", test::successor_gap_body("new", "h", 1, "old", 8, 3000));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::stored);

  AgentReport old = agent("old");
  EXPECT_TRUE(old.missing.empty());
  ASSERT_TRUE(old.successor.has_value());
  EXPECT_EQ(old.successor->agent_id, "new");
  EXPECT_EQ(old.successor->seq, 1u);
  EXPECT_EQ(old.successor->last_seq, 8u);
  ASSERT_EQ(old.declared_lost.size(), 2u);
  for (const DeclaredLost& d : old.declared_lost) {
    EXPECT_EQ(d.declared_by, "new");
    EXPECT_EQ(d.seq, 1u);
    EXPECT_EQ(d.gap.reason, "outbox_lost");
    EXPECT_EQ(d.gap.samples, 0u);
  }
  EXPECT_EQ(old.declared_lost[0].gap.first_seq, 4u);
  EXPECT_EQ(old.declared_lost[0].gap.last_seq, 4u);
  EXPECT_EQ(old.declared_lost[1].gap.first_seq, 6u);
  EXPECT_EQ(old.declared_lost[1].gap.last_seq, 8u);

  AgentReport next = agent("new");
  ASSERT_TRUE(next.predecessor.has_value());
  EXPECT_EQ(next.predecessor->agent_id, "old");
  EXPECT_EQ(next.predecessor->last_seq, 8u);
  ASSERT_EQ(next.declared_lost.size(), 1u);
  EXPECT_EQ(next.declared_lost[0].gap.samples, 3000u);
  EXPECT_EQ(next.declared_lost[0].gap.predecessor, (Predecessor{"old", 8}));
  EXPECT_EQ(next.successor, std::nullopt);

  // A batch of the predecessor still in flight arrives after all: received,
  // not lost.
  store_as("web-1", test::samples_body("old", "h", 7, lines_));
  old = agent("old");
  ASSERT_EQ(old.declared_lost.size(), 3u);
  EXPECT_EQ(old.declared_lost[1].gap.first_seq, 6u);
  EXPECT_EQ(old.declared_lost[1].gap.last_seq, 6u);
  EXPECT_EQ(old.declared_lost[2].gap.first_seq, 8u);
  EXPECT_EQ(old.declared_lost[2].gap.last_seq, 8u);
}

TEST_F(SuccessionTest, ThePredecessorsOwnGapRecordsAndSeqsPastTheClaimStayItsOwn) {
  for (std::uint64_t seq : {1, 9}) store_as("web-1", test::samples_body("old", "h", seq, lines_));
  store_as("web-1", test::gap_body("old", "h", 10, 2, 3, 20, "cap"));
  store_as("web-1", test::successor_gap_body("new", "h", 1, "old", 5, 0));
  AgentReport old = agent("old");
  ASSERT_EQ(old.declared_lost.size(), 2u);
  EXPECT_EQ(old.declared_lost[0].declared_by, "");
  EXPECT_EQ(old.declared_lost[1].gap.first_seq, 4u);
  EXPECT_EQ(old.declared_lost[1].gap.last_seq, 5u);
  EXPECT_EQ(old.missing, (std::vector<SeqRange>{{6, 8}})) << "past the declared last seq";
}

TEST_F(SuccessionTest, AnUnknownPredecessorIsAddedBoundToTheSuccessorsCredential) {
  ASSERT_EQ(store_as("web-1", test::successor_gap_body("new", "h", 1, "never-seen", 3, 0)).kind,
            StoreOutcome::Kind::stored);
  AgentReport old = agent("never-seen");
  EXPECT_EQ(old.credential, "web-1");
  EXPECT_EQ(old.host, "h");
  EXPECT_EQ(old.last_seq, 0u);
  ASSERT_EQ(old.declared_lost.size(), 1u);
  EXPECT_EQ(old.declared_lost[0].gap.first_seq, 1u);
  EXPECT_EQ(old.declared_lost[0].gap.last_seq, 3u);
  EXPECT_EQ(store_as("web-2", test::samples_body("never-seen", "h", 1, lines_)).kind,
            StoreOutcome::Kind::forbidden);
}

TEST_F(SuccessionTest, AnUnboundPredecessorIsAcceptedAndBound) {
  store(test::samples_body("old", "h", 1, lines_));  // before authentication
  EXPECT_EQ(store_as("web-1", test::successor_gap_body("new", "h", 1, "old", 2, 0)).kind,
            StoreOutcome::Kind::stored);
  EXPECT_EQ(agent("old").credential, "web-1");
}

TEST_F(SuccessionTest, APredecessorOfAnotherCredentialIsForbiddenAndNothingIsStored) {
  store_as("web-1", test::samples_body("victim", "h", 1, lines_));
  const std::string before = snapshot();
  StoreOutcome o =
      store_as("web-2", test::successor_gap_body("attacker", "other-host", 1, "victim", 100, 0));
  EXPECT_EQ(o.kind, StoreOutcome::Kind::forbidden);
  EXPECT_EQ(o.why,
            "gap.predecessor.agent_id: agent \"victim\" is bound to another credential than "
            "\"web-2\", this request's; only an agent of its own credential may declare its data "
            "lost");
  EXPECT_EQ(snapshot(), before) << "not even the new agent is added";
  EXPECT_TRUE(agent("victim").declared_lost.empty());
  // An agent of the same credential may.
  EXPECT_EQ(store_as("web-1", test::successor_gap_body("heir", "h", 1, "victim", 100, 0)).kind,
            StoreOutcome::Kind::stored);
}

TEST_F(SuccessionTest, OneSuccessorPerPredecessorAndOnePredecessorPerSuccessor) {
  store_as("web-1", test::successor_gap_body("b", "h", 1, "a", 5, 0));
  StoreOutcome copy = store_as("web-1", test::successor_gap_body("b", "h", 1, "a", 5, 0));
  EXPECT_EQ(copy.kind, StoreOutcome::Kind::duplicate);

  StoreOutcome rival = store_as("web-1", test::successor_gap_body("c", "h", 1, "a", 6, 0));
  EXPECT_EQ(rival.kind, StoreOutcome::Kind::conflict);
  EXPECT_EQ(rival.why,
            "gap.predecessor.agent_id: agent \"a\" has a successor already, \"b\" (its seq 1)");
  StoreOutcome second = store_as("web-1", test::successor_gap_body("b", "h", 2, "z", 6, 0));
  EXPECT_EQ(second.kind, StoreOutcome::Kind::conflict);
  EXPECT_EQ(second.why,
            "gap.predecessor: agent \"b\" named its predecessor, \"a\", in seq 1 already");
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM agents WHERE agent_id IN ('c', 'z')"), 0);
  // A chain: c continues b, which continues a.
  EXPECT_EQ(store_as("web-1", test::successor_gap_body("c", "h", 1, "b", 1, 0)).kind,
            StoreOutcome::Kind::stored);
  EXPECT_EQ(agent("b").successor->agent_id, "c");
  EXPECT_EQ(agent("b").predecessor->agent_id, "a");
}

}  // namespace
}  // namespace tally::collector
