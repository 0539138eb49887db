// Rollups, retention and series against a real database: the sums the
// housekeeper keeps (housekeeper.h), what GET /v1/series reads from them
// or from the raw chunks (series_query.h), and a simulated month with a
// compressed clock that shows the file stops growing.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "collector/group_rollup.h"
#include "collector_test_support.h"
#include "samples/json_line.h"
#include "store_test_support.h"

namespace tally::collector {
namespace {

using test_support::count_rows;

constexpr std::uint64_t kS = 1'000'000'000;
constexpr std::uint64_t kMinute = 60 * kS;
constexpr std::uint64_t kHour = 3600 * kS;
constexpr std::uint64_t kDay = 24 * kHour;
// 2027-01-15 00:00 UTC: whole hours, so buckets start where the tests say.
constexpr std::uint64_t kT0 = 1'800'000'000ull * kS - 1'800'000'000ull * kS % kDay;

TEST(GroupRollup, KeepsTheTopGroupsByNameAndSumsTheRestExactly) {
  GroupRollup rollup(kMinute, 2, 2);
  // comm "a" 3 processes, "b" 1, "c" 1, "d" 1: keep a and the larger of b, c, d.
  struct P {
    std::uint32_t pid;
    const char* comm;
    std::uint64_t cpu;
    std::uint64_t rss;
  };
  const P processes[] = {{1, "a", 100, 10}, {2, "a", 200, 20}, {3, "a", 300, 30},
                         {4, "b", 500, 40}, {5, "c", 7, 50},   {6, "d", 3, 60}};
  for (std::uint64_t ts : {kT0 + 10 * kS, kT0 + 40 * kS}) {
    for (const P& p : processes) {
      rollup.add("h", ProcessPoint{ts, p.pid, 1000 + p.pid, p.cpu, p.rss, p.comm, "/x", {}});
    }
  }
  std::vector<RollupRow> rows = rollup.take_rows();
  std::map<std::pair<int, std::string>, RollupRow> by;
  for (const RollupRow& r : rows) {
    EXPECT_EQ(r.bucket_ns, kT0);
    by[{static_cast<int>(r.kind) * (r.other ? -1 : 1), r.group}] = r;
  }
  const RollupRow& host = by.at({0, ""});
  EXPECT_EQ(host.cpu_ns, 2u * 1110);
  EXPECT_EQ(host.rss_max, 210u);
  EXPECT_EQ(host.rss_sum, 420u);
  EXPECT_EQ(host.points, 2u);
  EXPECT_EQ(host.processes, 6u);
  EXPECT_EQ(by.at({1, "a"}).cpu_ns, 1200u);
  EXPECT_EQ(by.at({1, "a"}).processes, 3u);
  EXPECT_EQ(by.at({1, "b"}).cpu_ns, 1000u);
  EXPECT_EQ(by.count({1, "c"}), 0u) << "only the top 2 comms are kept by name";
  const RollupRow& other = by.at({-1, ""});
  EXPECT_EQ(other.cpu_ns, 20u) << "c and d, exactly";
  EXPECT_EQ(other.processes, 2u);
  EXPECT_EQ(other.rss_max, 110u);
  EXPECT_EQ(by.at({1, "a"}).cpu_ns + by.at({1, "b"}).cpu_ns + other.cpu_ns, host.cpu_ns);
  // One cgroup: kept whole, no rest.
  EXPECT_EQ(by.at({2, "/x"}).cpu_ns, host.cpu_ns);
  EXPECT_EQ(by.count({-2, ""}), 0u);
  // Processes: the top two by CPU, labelled with their comm.
  EXPECT_EQ(by.at({3, "4:1004"}).label, "b");
  EXPECT_EQ(by.at({3, "3:1003"}).cpu_ns, 600u);
}

// A host's processes in one interval, with comms shared and varied: the
// CPU of process i is (i + 1) * 1 ms * factor.
std::vector<std::string> interval_lines(const std::string& host, std::uint64_t ts,
                                        std::uint32_t processes, std::uint64_t factor,
                                        std::uint32_t generation = 0) {
  std::vector<std::string> lines;
  for (std::uint32_t i = 0; i < processes; ++i) {
    samples::ProcessSample s;
    s.ts_ns = ts;
    s.interval_ns = 60 * kS;
    s.host = host;
    s.pid = 1000 + i + generation * processes;
    s.start_time_ns = kT0 - kDay + s.pid;
    s.comm = "app-" + std::to_string(i % 30);
    s.cmdline = "/usr/bin/app --n " + std::to_string(i);
    s.cgroup = "/system.slice/app" + std::to_string(i % 5) + ".service";
    s.cpu_ns = (i + 1) * 1'000'000 * factor;
    s.cpu_pct = samples::percent(s.cpu_ns, s.interval_ns);
    s.rss_bytes = (std::uint64_t{i} + 1) << 20;
    lines.push_back(samples::to_json_line(s));
  }
  samples::HostSample h;
  h.ts_ns = ts;
  h.interval_ns = 60 * kS;
  h.host = host;
  h.ncpu = 4;
  h.busy_ns = 1;
  h.cpu_pct = samples::percent(h.busy_ns, h.interval_ns * 4);
  h.processes = processes;
  lines.push_back(samples::to_json_line(h));
  return lines;
}

std::uint64_t interval_cpu(std::uint32_t processes, std::uint64_t factor) {
  return std::uint64_t{processes} * (processes + 1) / 2 * 1'000'000 * factor;
}

class RollupTest : public test_support::StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    reopen({});
  }

  void reopen(Retention retention, std::uint64_t names_max_age_ns = 7 * kDay) {
    store_.reset();
    BatchStore::Options options;
    options.path = db_;
    options.durability = Durability::normal;
    options.clock = [this] { return now_; };
    options.retention = retention;
    options.names_max_age_ns = names_max_age_ns;
    auto store = BatchStore::open(options);
    ASSERT_TRUE(store.ok()) << store.error().message();
    store_ = std::move(store).value();
  }

  void store_interval(const std::string& host, std::uint64_t seq, std::uint64_t ts,
                      std::uint32_t processes = 40, std::uint64_t factor = 1,
                      std::uint32_t generation = 0) {
    auto lines = interval_lines(host, ts, processes, factor, generation);
    ASSERT_EQ(store(test::samples_body("agent-" + host, host, seq, lines)).kind,
              StoreOutcome::Kind::stored);
  }

  // Housekeeping until it has nothing left to do.
  int housekeep() {
    int steps = 0;
    for (;;) {
      auto more = store_->housekeep();
      EXPECT_TRUE(more.ok()) << more.error().message();
      ++steps;
      if (!more.ok() || !*more || steps > 100000) return steps;
    }
  }

  std::int64_t rollup_cpu(int step_s, int kind, std::uint64_t bucket) {
    return count_rows(db_, fmt::format("SELECT coalesce(sum(cpu_ns), -1) FROM rollups WHERE "
                                       "step_s = {} AND kind = {} AND bucket_ns = {}",
                                       step_s, kind, bucket));
  }

  SeriesRows series(SeriesQuery q) {
    auto rows = queries_->series(q);
    EXPECT_TRUE(rows.ok()) << rows.error().message();
    return rows.ok() ? *rows : SeriesRows{};
  }

  std::uint64_t now_ = kT0;
};

TEST_F(RollupTest, EachMinuteAndHourIsSummedFromItsChunksWithAnExactRest) {
  for (std::uint64_t m = 0; m < 3; ++m) store_interval("web-1", m + 1, kT0 + m * kMinute + 30 * kS);
  now_ = kT0 + 5 * kMinute;
  housekeep();
  for (std::uint64_t m = 0; m < 3; ++m) {
    const std::uint64_t bucket = kT0 + m * kMinute;
    EXPECT_EQ(rollup_cpu(60, 0, bucket), static_cast<std::int64_t>(interval_cpu(40, 1)));
    // 30 comms, 10 kept by name per minute: the rest is in `other`, and
    // they add up.
    EXPECT_EQ(count_rows(db_, fmt::format("SELECT count(*) FROM rollups WHERE step_s = 60 AND "
                                          "kind = 1 AND bucket_ns = {}",
                                          bucket)),
              11);
    for (int kind : {1, 2, 3}) EXPECT_EQ(rollup_cpu(60, kind, bucket), rollup_cpu(60, 0, bucket));
  }
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM rollups WHERE step_s = 3600"), 0)
      << "an hour is summed once it is over";
  now_ = kT0 + kHour + kMinute;
  housekeep();
  EXPECT_EQ(rollup_cpu(3600, 0, kT0), static_cast<std::int64_t>(3 * interval_cpu(40, 1)));
  EXPECT_EQ(rollup_cpu(3600, 3, kT0), rollup_cpu(3600, 0, kT0));
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM rollups WHERE step_s = 3600 AND kind = 1"), 21)
      << "20 comms by name per hour, and the rest";
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM rollup_dirty"), 0);
}

TEST_F(RollupTest, DataThatArrivesLateIsSummedAgainIntoItsBuckets) {
  store_interval("web-1", 1, kT0 + 30 * kS);
  now_ = kT0 + 2 * kHour;
  housekeep();
  EXPECT_EQ(rollup_cpu(3600, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 1)));
  // An agent back from an outage sends the next minute of that hour.
  store_interval("web-1", 2, kT0 + kMinute + 30 * kS, 40, 3);
  housekeep();
  EXPECT_EQ(rollup_cpu(60, 0, kT0 + kMinute), static_cast<std::int64_t>(interval_cpu(40, 3)));
  EXPECT_EQ(rollup_cpu(3600, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 4)));
}

TEST_F(RollupTest, RetentionDeletesOldChunksNamesAndBatchRowsAndKeepsTheRollups) {
  Retention r;
  r.raw_ns = 2 * kDay;
  r.minute_rollups_ns = 4 * kDay;
  r.hour_rollups_ns = 8 * kDay;
  reopen(r, kDay);
  store_interval("web-1", 1, kT0 + 30 * kS);
  ASSERT_EQ(store(test::gap_body("agent-web-1", "web-1", 2, 0, 0, 7, "outbox_full")).kind,
            StoreOutcome::Kind::stored);
  store_interval("web-1", 3, kT0 + kDay, 40, 1, 1);  // other processes: other names rows
  now_ = kT0 + kDay + 2 * kHour;
  housekeep();
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM chunks"), 2);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names"), 80);

  now_ = kT0 + 2 * kDay + kHour;  // the first interval is past the raw window
  housekeep();
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM chunks"), 1);
  EXPECT_EQ(count_rows(db_, "SELECT min(seq) FROM batches"), 3) << "seq 1's row went with it";
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names"), 80)
      << "names stay two hours longer than the chunks that used them";
  // A day after their last batch the processes' current names are
  // forgotten (names_max_age); then no chunk and no process needs them.
  now_ = kT0 + 2 * kDay + 3 * kHour;
  store_interval("web-1", 4, now_, 40, 1, 2);
  housekeep();
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names WHERE pid < 1040"), 0);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM names"), 80);
  EXPECT_EQ(rollup_cpu(60, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 1)))
      << "the minute rollup outlives the chunk";
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM gaps"), 1) << "gap records are kept";

  // A resent batch from before the raw window is taken and deleted again;
  // the rollups it would change are not summed from a partial bucket.
  store_interval("web-1", 1, kT0 + 30 * kS);
  housekeep();
  EXPECT_EQ(rollup_cpu(60, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 1)));
  EXPECT_EQ(store_->housekeeping().late_buckets, 2u);

  now_ = kT0 + 4 * kDay + kHour;
  housekeep();
  EXPECT_EQ(rollup_cpu(60, 0, kT0), -1);
  EXPECT_EQ(rollup_cpu(3600, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 1)));
  now_ = kT0 + 8 * kDay + kHour;
  housekeep();
  EXPECT_EQ(rollup_cpu(3600, 0, kT0), -1);
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM gaps"), 1);
}

// A month of one host, an interval every 10 minutes, with processes
// replaced every day, under short retention: once retention deletes as
// much as comes in, the file stops growing, its freed pages reused.
TEST_F(RollupTest, ASimulatedMonthKeepsTheFileFlatOnceRetentionStarts) {
  Retention r;
  r.raw_ns = 3 * kDay;
  r.minute_rollups_ns = 5 * kDay;
  r.hour_rollups_ns = 10 * kDay;
  reopen(r);
  auto pages = [&] { return count_rows(db_, "PRAGMA page_count"); };
  std::map<int, std::int64_t> pages_at_day;
  std::int64_t most_free = 0;
  std::uint64_t seq = 0;
  for (int day = 0; day < 30; ++day) {
    for (std::uint64_t i = 0; i < 144; ++i) {
      now_ = kT0 + day * kDay + i * 10 * kMinute;
      store_interval("web-1", ++seq, now_, 60, 1 + i % 7, static_cast<std::uint32_t>(day));
      if (i % 6 == 0) housekeep();
    }
    housekeep();
    pages_at_day[day] = pages();
    most_free = std::max(most_free, count_rows(db_, "PRAGMA freelist_count"));
  }
  EXPECT_GT(pages_at_day[12], pages_at_day[2]) << "the file grows until retention starts";
  // After the longest retention (10 days) and a little: flat, within 2%
  // (measured: 1,404 pages on day 14, 1,408 from day 16 on).
  EXPECT_LE(pages_at_day[29], pages_at_day[14] * 102 / 100)
      << "day 14: " << pages_at_day[14] << " pages, day 29: " << pages_at_day[29];
  EXPECT_GT(most_free, 0) << "deleted pages go to the freelist, for new rows";
  EXPECT_EQ(count_rows(db_, "SELECT count(*) FROM chunks"), 3 * 144 + 1);
  EXPECT_EQ(count_rows(db_, fmt::format("SELECT count(*) FROM rollups WHERE step_s = 3600 AND "
                                        "bucket_ns < {}",
                                        now_ - 10 * kDay)),
            0);
  EXPECT_EQ(store_->housekeeping().names_missing, 0u);
}

TEST_F(RollupTest, SeriesFromRollupsMatchTheRawSamplesAndAddUpToTheTotal) {
  for (std::uint64_t m = 0; m < 10; ++m) {
    if (m == 4) continue;  // a gap
    store_interval("web-1", m + 1, kT0 + m * kMinute + 30 * kS, 40, 1 + m % 3);
  }
  now_ = kT0 + 11 * kMinute;
  housekeep();
  SeriesQuery q;
  q.host = "web-1";
  q.group_by = GroupKind::comm;
  q.from = kT0;
  q.to = kT0 + 10 * kMinute;
  q.top = 5;
  q.step_ns = kMinute;
  EXPECT_EQ(source_for(q, q.step_ns), SeriesSource::raw) << "one host, a short window";
  SeriesRows rawish = series(q);
  q.source = SeriesSource::minute;
  SeriesRows rollups = series(q);
  q.source.reset();
  q.step_ns = 30 * kS;
  SeriesRows raw = series(q);
  EXPECT_EQ(rawish.total.cpu_ns, rollups.total.cpu_ns);
  EXPECT_EQ(rollups.source, SeriesSource::minute);
  EXPECT_EQ(raw.source, SeriesSource::raw);
  ASSERT_EQ(rollups.points, 10u);
  ASSERT_EQ(raw.points, 20u);
  ASSERT_EQ(rollups.named.size(), 5u);
  ASSERT_TRUE(rollups.other.has_value());
  for (std::size_t i = 0; i < 10; ++i) {
    if (i == 4) {
      EXPECT_FALSE(rollups.total.cpu_ns[i].has_value()) << "the gap is a gap, not a zero";
      EXPECT_FALSE(rollups.named[0].cpu_ns[i].has_value());
      continue;
    }
    const std::uint64_t expected = interval_cpu(40, 1 + i % 3);
    EXPECT_EQ(rollups.total.cpu_ns[i], expected) << i;
    EXPECT_EQ(raw.total.cpu_ns[2 * i + 1], expected) << i;
    EXPECT_FALSE(raw.total.cpu_ns[2 * i].has_value());
    std::uint64_t stacked = *rollups.other->cpu_ns[i];
    for (std::size_t g = 0; g < 5; ++g) {
      EXPECT_EQ(rollups.named[g].group, raw.named[g].group);
      EXPECT_EQ(rollups.named[g].cpu_ns[i], raw.named[g].cpu_ns[2 * i + 1]);
      stacked += *rollups.named[g].cpu_ns[i];
    }
    EXPECT_EQ(stacked, expected) << "the stack adds up to the total, to the nanosecond";
    // RSS: the host's whole RSS (1 + ... + 40 MiB); the top comm app-9
    // holds processes 9 and 39 (10 + 40 MiB).
    EXPECT_EQ(rollups.total.rss_bytes[i], std::uint64_t{40 * 41 / 2} << 20);
    EXPECT_EQ(rollups.named[0].group, "app-9");
    EXPECT_EQ(rollups.named[0].rss_bytes[i], std::uint64_t{50} << 20);
  }
}

TEST_F(RollupTest, LongStepsReadHourRollupsAndTheLastHoursFromMinutes) {
  for (std::uint64_t h = 0; h < 6; ++h) {
    store_interval("web-1", 2 * h + 1, kT0 + h * kHour + 10 * kMinute);
    store_interval("web-2", 2 * h + 2, kT0 + h * kHour + 10 * kMinute, 40, 2);
  }
  now_ = kT0 + 5 * kHour + 30 * kMinute;
  housekeep();
  SeriesQuery q;
  q.group_by = GroupKind::host;
  q.from = kT0;
  q.to = kT0 + 6 * kHour;
  q.step_ns = kHour;
  EXPECT_EQ(source_for(q, q.step_ns), SeriesSource::hour) << "the fleet: rollups";
  SeriesRows rows = series(q);
  EXPECT_EQ(rows.source, SeriesSource::hour);
  ASSERT_EQ(rows.points, 6u);
  ASSERT_EQ(rows.named.size(), 2u);
  EXPECT_EQ(rows.named[0].group, "web-2");
  EXPECT_FALSE(rows.other.has_value());
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rows.total.cpu_ns[i], interval_cpu(40, 3)) << "hour " << i;
    EXPECT_EQ(rows.named[1].cpu_ns[i], interval_cpu(40, 1)) << "hour " << i;
  }
  // The last hour is not summed into an hour yet: minute rollups fill it.
  EXPECT_EQ(count_rows(db_, fmt::format("SELECT count(*) FROM rollups WHERE step_s = 3600 AND "
                                        "bucket_ns = {}",
                                        kT0 + 5 * kHour)),
            0);
  q.top = 1;
  rows = series(q);
  ASSERT_TRUE(rows.other.has_value());
  EXPECT_EQ(rows.other->group, "other");
  EXPECT_EQ(rows.other->cpu_ns[5], interval_cpu(40, 1));

  TopQuery top;
  top.by = GroupKind::comm;
  top.from = kT0;
  top.to = kT0 + 6 * kHour;
  top.window_given = true;
  top.n = 3;
  auto best = queries_->top(top);
  ASSERT_TRUE(best.ok()) << best.error().message();
  ASSERT_EQ(best->top.size(), 3u);
  EXPECT_EQ(best->top[0].group, "app-9");
  // app-9: processes 9 and 39, (10 + 40) ms per interval, factors 1 + 2, 6 hours.
  EXPECT_EQ(best->top[0].cpu_ns, 50u * 1'000'000 * 3 * 6);
  EXPECT_EQ(best->source, SeriesSource::minute);
}

TEST_F(RollupTest, AnUpgradedDatabaseIsSummedInTheBackground) {
  store_interval("web-1", 1, kT0 + 30 * kS);
  // As a version 5 database: no rollups, no marks.
  store_.reset();
  queries_.reset();
  {
    auto db = sql::Database::open(db_, sql::Database::Mode::read_write_create);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db->exec("DROP TABLE rollups; DROP TABLE rollup_dirty; DROP TABLE series_hosts;"
                         " DROP TABLE rollup_groups;"
                         " ALTER TABLE names DROP COLUMN last_ts_ns;"
                         " ALTER TABLE agents DROP COLUMN last_seen_ns;"
                         " ALTER TABLE agents DROP COLUMN software;"
                         " PRAGMA user_version = 5")
                    .ok());
  }
  reopen({});
  reopen_queries();
  now_ = kT0 + 2 * kHour;
  housekeep();
  EXPECT_EQ(rollup_cpu(60, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 1)));
  EXPECT_EQ(rollup_cpu(3600, 0, kT0), static_cast<std::int64_t>(interval_cpu(40, 1)));
}

}  // namespace
}  // namespace tally::collector
