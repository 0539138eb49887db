// The store's bounds against real SQLite files: the WAL stays bounded under
// sustained writes with queries running, sums never overflow, a process's
// names are stored once, queries stop at their time limit, and the files
// are the owner's only.
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "collector/batch_store.h"
#include "collector/query_store.h"
#include "collector/request_decoder.h"
#include "collector_test_support.h"
#include "store_test_support.h"

namespace tally::collector {
namespace {

constexpr std::uint64_t kMaxCpu = std::numeric_limits<std::int64_t>::max();

using test_support::count_rows;
using test_support::decoded;
using test_support::query_text;

// A process line of the agent's with the given pid, time and cpu_ns.
std::string process_line(std::uint32_t pid, std::uint64_t ts_ns, std::uint64_t cpu_ns,
                         const std::string& host = "web-1") {
  auto line = nlohmann::ordered_json::parse(test::agent_lines(host, ts_ns, 1, pid, false)[0]);
  line["cpu_ns"] = cpu_ns;
  return line.dump();
}

// `lines` with every cmdline this long (a realistic command line of a JVM or
// a container's entrypoint runs to hundreds of bytes).
std::vector<std::string> with_cmdline_bytes(std::vector<std::string> lines, std::size_t bytes) {
  for (auto& l : lines) {
    auto j = nlohmann::ordered_json::parse(l);
    if (j["kind"] != "process") continue;
    std::string cmdline = j["cmdline"];
    while (cmdline.size() < bytes) cmdline += " --flag-" + std::to_string(cmdline.size());
    j["cmdline"] = cmdline.substr(0, bytes);
    l = j.dump();
  }
  return lines;
}

class StoreTest : public test_support::StoreFixture {
 protected:
  TopRows top(std::uint64_t from = 0, std::uint64_t to = kMaxCpu) {
    TopQuery q;
    q.from = from;
    q.to = to;
    auto rows = queries_->top(q);
    EXPECT_TRUE(rows.ok()) << rows.error().message();
    return rows.ok() ? *rows : TopRows{};
  }
};

// F9: two samples at the protocol's bound made every window over them fail.
TEST_F(StoreTest, TopSaturatesASumPastTheLargestIntegerInsteadOfFailing) {
  ASSERT_EQ(
      store(test::samples_body("a", "web-1", 1,
                               {process_line(100, 1000, kMaxCpu), process_line(101, 1000, 5)}))
          .stored,
      2u);
  ASSERT_EQ(
      store(test::samples_body("a", "web-1", 2,
                               {process_line(100, 2000, kMaxCpu), process_line(101, 2000, 7)}))
          .stored,
      2u);
  for (int restart = 0; restart < 2; ++restart) {
    TopRows all = top();
    ASSERT_EQ(all.top.size(), 2u);
    EXPECT_EQ(all.top[0].pid, 100u);
    EXPECT_EQ(all.top[0].cpu_ns, kMaxCpu);
    EXPECT_EQ(all.top[1].cpu_ns, 12u) << "the other sums stay exact";
    TopRows second = top(1500, 2500);
    ASSERT_EQ(second.top.size(), 2u);
    EXPECT_EQ(second.top[0].cpu_ns, kMaxCpu) << "one sample: the value itself";
    // What a collector restart does to the store: both sides reopened.
    store_.reset();
    open_stores();
  }
}

TEST_F(StoreTest, TopSaturatesEachOfSeveralProcessesOnSeveralHosts) {
  std::vector<std::string> lines;
  for (std::uint32_t pid = 200; pid < 205; ++pid) {
    for (std::uint64_t ts : {1000, 2000, 3000}) {
      lines.push_back(process_line(pid, ts, kMaxCpu / 2 + pid, pid % 2 == 0 ? "a" : "b"));
    }
  }
  lines.push_back(process_line(300, 1000, 1));
  ASSERT_EQ(store(test::samples_body("x", "a", 1, lines)).stored, lines.size());
  TopRows all = top();
  ASSERT_EQ(all.top.size(), 6u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(all.top[i].cpu_ns, kMaxCpu) << i;
  // Ties are ordered by host, then pid.
  EXPECT_EQ(all.top[0].host, "a");
  EXPECT_EQ(all.top[0].pid, 200u);
  EXPECT_EQ(all.top[3].host, "b");
  EXPECT_EQ(all.top[5].pid, 300u);
  EXPECT_EQ(all.top[5].cpu_ns, 1u);
}

TEST_F(StoreTest, TopSumsStayExactWhereADoubleWouldRound) {
  // 2^60 + 1: a double cannot hold it, nor twice it (TOTAL() would round).
  const std::uint64_t big = (1ull << 60) + 1;
  store(test::samples_body("a", "web-1", 1, {process_line(100, 1000, big)}));
  store(test::samples_body("a", "web-1", 2, {process_line(100, 2000, big)}));
  TopRows all = top();
  ASSERT_EQ(all.top.size(), 1u);
  EXPECT_EQ(all.top[0].cpu_ns, 2 * big);
}

TEST_F(StoreTest, TheDuplicateCounterSaturatesAndStaysAnInteger) {
  const std::string body = test::samples_body("a", "web-1", 1, test::agent_lines("web-1", 1, 10));
  store(body);
  store_.reset();
  {
    sqlite3* db = nullptr;
    sqlite3_open(db_.c_str(), &db);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE agents SET duplicates_rejected = 9223372036854775800",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  open_stores();
  EXPECT_EQ(store(body).kind, StoreOutcome::Kind::duplicate);
  EXPECT_EQ(query_text(db_, "SELECT typeof(duplicates_rejected) FROM agents"), "integer");
  EXPECT_EQ(count_rows(db_, "SELECT duplicates_rejected FROM agents"),
            std::numeric_limits<std::int64_t>::max());
  auto agents = queries_->agents();
  ASSERT_TRUE(agents.ok());
  EXPECT_EQ((*agents)[0].duplicates_rejected, kMaxCpu);
  EXPECT_EQ((*agents)[0].samples_stored, 10u);
}

// F11: a process's names were stored again in every sample row.
TEST_F(StoreTest, AProcesssNamesAreStoredOnceHoweverOftenTheyAreSent) {
  constexpr int kBatches = 20;
  constexpr int kSamples = 1000;  // 999 processes and the host line
  for (std::size_t cmdline_bytes : {std::size_t{0}, std::size_t{512}}) {
    test::TempDir dir;
    BatchStore::Options options;
    options.path = dir / "c.db";
    options.durability = Durability::normal;
    auto store = BatchStore::open(options);
    ASSERT_TRUE(store.ok()) << store.error().message();
    std::size_t names_bytes = 0;
    std::vector<std::string> first;
    for (int b = 0; b < kBatches; ++b) {
      auto lines = test::agent_lines("web-1", 1000 + static_cast<std::uint64_t>(b), kSamples);
      if (cmdline_bytes > 0) lines = with_cmdline_bytes(lines, cmdline_bytes);
      if (b == 0) {
        first = lines;
        for (const auto& l : lines) {
          auto j = nlohmann::json::parse(l);
          if (j["kind"] == "process") {
            names_bytes += j["comm"].dump().size() + j["cmdline"].dump().size() +
                           j["cgroup"].dump().size() + 26;
          }
        }
      }
      auto o = (*store)->store(
          decoded(test::samples_body("a", "web-1", static_cast<std::uint64_t>(b + 1), lines)));
      ASSERT_TRUE(o.ok()) << o.error().message();
    }
    store->reset();  // checkpoints the WAL into the file
    const double bytes = static_cast<double>(std::filesystem::file_size(dir / "c.db"));
    std::printf(
        "stored %d batches of %d samples, names %.0f bytes per process sample as sent: "
        "%.0f bytes per stored sample\n",
        kBatches, kSamples, static_cast<double>(names_bytes) / (kSamples - 1),
        bytes / (kBatches * kSamples));
    std::fflush(stdout);

    EXPECT_EQ(count_rows(dir / "c.db", "SELECT count(*) FROM names"), kSamples - 1);
    EXPECT_EQ(test_support::verbatim_samples(dir / "c.db"), 0);
    // Served back byte for byte as received.
    auto queries = QueryStore::open(dir / "c.db");
    ASSERT_TRUE(queries.ok());
    SampleQuery q;
    q.to = 1001;
    auto rows = (*queries)->samples(q);
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ(rows->json, first);
  }
}

TEST_F(StoreTest, NewNamesOfAProcessAreANewRowAndEarlierSamplesKeepTheirs) {
  const std::string before = process_line(100, 1000, 1);
  auto exec = nlohmann::ordered_json::parse(process_line(100, 2000, 2));
  exec["comm"] = "java";
  exec["cmdline"] = "java -jar app.jar";
  store(test::samples_body("a", "web-1", 1, {before}));
  store(test::samples_body("a", "web-1", 2, {exec.dump()}));
  store(test::samples_body("a", "web-1", 3, {process_line(100, 3000, 3)}));  // its old names again
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names"), 2);
  SampleQuery q;
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->json.size(), 3u);
  EXPECT_EQ(rows->json[0], before);
  EXPECT_EQ(rows->json[1], exec.dump());
  EXPECT_EQ(rows->json[2], process_line(100, 3000, 3));
  TopRows t = top(1500, 2500);
  ASSERT_EQ(t.top.size(), 1u);
  EXPECT_EQ(t.top[0].comm, "java") << "names of the latest sample in the window";
  EXPECT_EQ(t.top[0].cmdline, "java -jar app.jar");
}

TEST_F(StoreTest, AQueryPastItsTimeLimitStopsAndSaysSo) {
  for (std::uint64_t seq = 1; seq <= 60; ++seq) {
    ASSERT_EQ(store(test::samples_body("a", "web-1", seq,
                                       test::agent_lines("web-1", seq, 1000, 100 + 1000 * seq)))
                  .stored,
              1000u);
  }
  // 60,000 processes to group and sort: far more than a millisecond.
  QueryLimits limits;
  limits.time = std::chrono::milliseconds(1);
  reopen_queries(limits);
  TopQuery q;
  auto rows = queries_->top(q);
  ASSERT_FALSE(rows.ok());
  EXPECT_NE(rows.error().message().find("query time limit of 1 ms"), std::string::npos)
      << rows.error().message();
  // The connection is usable again at once, and without a limit the same
  // query completes.
  EXPECT_TRUE(queries_->check().ok());
  limits.time = std::chrono::milliseconds(0);
  reopen_queries(limits);
  rows = queries_->top(q);
  ASSERT_TRUE(rows.ok()) << rows.error().message();
  EXPECT_EQ(rows->top.size(), 10u);
}

TEST_F(StoreTest, AnswersStopAtTheirByteLimitAndSayTheyAreTruncated) {
  store(test::samples_body("a", "web-1", 1,
                           with_cmdline_bytes(test::agent_lines("web-1", 1000, 100), 4096)));
  QueryLimits limits;
  limits.answer_bytes = 64 * 1024;
  reopen_queries(limits);
  SampleQuery q;
  auto rows = queries_->samples(q);
  ASSERT_TRUE(rows.ok());
  EXPECT_TRUE(rows->truncated);
  EXPECT_GT(rows->json.size(), 0u);
  EXPECT_LT(rows->json.size(), 20u);
  TopQuery t;
  t.n = 100;
  auto top_rows = queries_->top(t);
  ASSERT_TRUE(top_rows.ok());
  EXPECT_TRUE(top_rows->truncated);
  EXPECT_LT(top_rows->top.size(), 20u);
}

// F8: under constant writes with queries always running, PASSIVE checkpoints
// never let the WAL start over, and it grew without bound (23.6 GB).
TEST(StoreWal, StaysBoundedUnderSustainedIngestionWhileQueriesRun) {
  test::TempDir dir;
  const std::string path = dir / "c.db";
  BatchStore::Options options;
  options.path = path;
  options.durability = Durability::normal;
  auto store = BatchStore::open(options);
  ASSERT_TRUE(store.ok()) << store.error().message();

  // Two readers taking turns so that one always holds a snapshot, each for
  // 50 ms, as a collector answering queries back to back does.
  std::atomic<bool> stop{false};
  std::thread readers([&] {
    sqlite3* db[2] = {nullptr, nullptr};
    for (auto*& d : db) sqlite3_open_v2(path.c_str(), &d, SQLITE_OPEN_READONLY, nullptr);
    int current = 0;
    sqlite3_exec(db[current], "BEGIN; SELECT count(*) FROM agents", nullptr, nullptr, nullptr);
    while (!stop) {
      const int next = 1 - current;
      sqlite3_exec(db[next], "BEGIN; SELECT count(*) FROM agents", nullptr, nullptr, nullptr);
      sqlite3_exec(db[current], "COMMIT", nullptr, nullptr, nullptr);
      current = next;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    sqlite3_exec(db[current], "COMMIT", nullptr, nullptr, nullptr);
    for (auto* d : db) sqlite3_close(d);
  });

  // The restart point of a new file's 4 KiB pages (8 MiB) and some batches.
  constexpr std::uintmax_t kBound = 16u << 20;
  constexpr std::uintmax_t kWritten = 4 * kBound;
  std::mt19937_64 rng(1);
  const char* const hex = "0123456789abcdef";
  std::uintmax_t max_wal = 0, written = 0;
  std::uint64_t seq = 0;
  std::chrono::steady_clock::duration longest{}, total{};  // printed, never asserted
  while (written < kWritten && seq < 2000) {
    ++seq;
    // An unknown field is kept in the sample: 2 KiB samples fill the WAL
    // fast (random, so that zstd cannot shrink them).
    auto lines = test::agent_lines("web-1", seq, 1000);
    for (auto& l : lines) {
      std::string labels(2000, 'x');
      for (char& c : labels) c = hex[rng() % 16];
      l.insert(l.size() - 1, ",\"labels\":\"" + labels + "\"");
    }
    const auto begin = std::chrono::steady_clock::now();
    auto o = (*store)->store(decoded(test::samples_body("a", "web-1", seq, lines)));
    ASSERT_TRUE(o.ok()) << o.error().message();
    const auto took = std::chrono::steady_clock::now() - begin;
    longest = std::max(longest, took);
    total += took;
    std::error_code ec;
    max_wal = std::max(max_wal, std::filesystem::file_size(path + "-wal", ec));
    written = std::filesystem::file_size(path) + std::filesystem::file_size(path + "-wal", ec);
  }
  stop = true;
  readers.join();
  using ms = std::chrono::milliseconds;
  std::printf(
      "%llu batches, database %ju MiB, largest WAL %ju MiB; store took %lld ms on "
      "average, %lld ms at most\n",
      static_cast<unsigned long long>(seq), std::filesystem::file_size(path) >> 20, max_wal >> 20,
      static_cast<long long>(std::chrono::duration_cast<ms>(total).count() /
                             static_cast<long long>(seq)),
      static_cast<long long>(std::chrono::duration_cast<ms>(longest).count()));
  EXPECT_GE(written, kWritten) << "wrote too little to tell";
  EXPECT_LE(max_wal, kBound);
}

TEST(StoreFiles, ANewDatabaseAndItsDirectoryAreTheOwnersOnly) {
  const mode_t old_umask = ::umask(022);
  test::TempDir dir;
  const std::string path = dir / "state/collector.db";
  {
    BatchStore::Options options;
    options.path = path;
    auto store = BatchStore::open(options);
    ASSERT_TRUE(store.ok()) << store.error().message();
    ASSERT_TRUE((*store)
                    ->store(decoded(test::samples_body("a", "h", 1, test::agent_lines("h", 1, 3))))
                    .ok());
    auto mode = [](const std::string& p) {
      struct stat st {};
      EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
      return st.st_mode & 07777;
    };
    EXPECT_EQ(mode(dir / "state"), 0700u);
    EXPECT_EQ(mode(path), 0600u);
    EXPECT_EQ(mode(path + "-wal"), 0600u);
    EXPECT_EQ(mode(path + "-shm"), 0600u);
  }
  ::umask(old_umask);
}

TEST(StoreFiles, AnExistingDatabaseOthersCouldReadIsNarrowed) {
  const mode_t old_umask = ::umask(022);
  test::TempDir dir;
  const std::string path = dir / "collector.db";
  {
    BatchStore::Options options;
    options.path = path;
    ASSERT_TRUE(BatchStore::open(options).ok());
  }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  BatchStore::Options options;
  options.path = path;
  auto store = BatchStore::open(options);
  ASSERT_TRUE(store.ok()) << store.error().message();
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ::umask(old_umask);
}

}  // namespace
}  // namespace tally::collector
