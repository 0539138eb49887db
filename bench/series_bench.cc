// Queries of the fleet view (GET /v1/series and /v1/top) over 24 hours of
// a 100-host fleet, from the rollups the collector keeps (housekeeper.h),
// against the floor of a plain SELECT count(*) over the same rows.
//
// The rollup rows are written directly, in the shape the housekeeper
// writes them (per host and minute: the total, 10 comms, 10 cgroups and 5
// processes by name, and the rest of each kind; per hour 20 of each):
// summing 43 million raw samples first would take minutes and measure
// the writer, not the queries. The queries are the collector's own
// (QueryStore), on its read-only connection.
//
//   build/bench/series_bench [--hosts 100] [--hours 24] [--repetitions 7] [--dir DIR]
//                            [--minute-hours N: minute rollups for the last N hours only]
// The browser test (tests/web) uses it to make a week of a fleet.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "collector/batch_store.h"
#include "collector/query_store.h"

namespace fs = std::filesystem;
using tally::collector::GroupKind;

namespace {

constexpr std::uint64_t kS = 1'000'000'000;
constexpr std::uint64_t kMinute = 60 * kS;
constexpr std::uint64_t kHour = 3600 * kS;

bool exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "series_bench: %s: %s\n", sql.c_str(), err);
    sqlite3_free(err);
    return false;
  }
  return true;
}

struct Writer {
  sqlite3* db = nullptr;
  sqlite3_stmt* row = nullptr;
  std::mt19937_64 rng{42};

  // One bucket of one host: the total, `keep` named groups of each kind
  // out of a population, and the rest.
  void bucket(int step_s, std::int64_t host, std::uint64_t bucket, std::size_t keep,
              std::size_t keep_processes, const std::vector<std::int64_t>& comms,
              const std::vector<std::int64_t>& cgroups,
              const std::vector<std::int64_t>& processes) {
    const std::uint64_t scale = static_cast<std::uint64_t>(step_s);
    std::uniform_int_distribution<std::uint64_t> cpu(1'000'000 * scale, 900'000'000 * scale);
    auto put = [&](int kind, int other, std::int64_t group, std::uint64_t cpu_ns) {
      sqlite3_bind_int64(row, 1, step_s);
      sqlite3_bind_int64(row, 2, host);
      sqlite3_bind_int64(row, 3, kind);
      sqlite3_bind_int64(row, 4, static_cast<sqlite3_int64>(bucket));
      sqlite3_bind_int64(row, 5, other);
      sqlite3_bind_int64(row, 6, group);
      sqlite3_bind_int64(row, 7, static_cast<sqlite3_int64>(cpu_ns));
      sqlite3_bind_int64(row, 8, 200 << 20);
      sqlite3_bind_int64(row, 9, 200 << 20);
      sqlite3_bind_int64(row, 10, 1);
      sqlite3_bind_int64(row, 11, 30);
      sqlite3_step(row);
      sqlite3_reset(row);
    };
    put(0, 0, 0, 300ull * 500'000'000 * scale);
    const std::vector<std::int64_t>* kinds[] = {&comms, &cgroups, &processes};
    for (int k = 0; k < 3; ++k) {
      const auto& pool = *kinds[k];
      const std::size_t n = k == 2 ? keep_processes : keep;
      const std::size_t offset = rng() % 3;  // the top changes a little
      for (std::size_t i = 0; i < n && i < pool.size(); ++i) {
        put(k + 1, 0, pool[(i + offset) % pool.size()], cpu(rng));
      }
      put(k + 1, 1, 0, cpu(rng));
    }
  }
};

bool populate(const fs::path& db_path, int hosts, int hours, int minute_hours, std::uint64_t from) {
  sqlite3* db = nullptr;
  if (sqlite3_open(db_path.c_str(), &db) != SQLITE_OK) return false;
  bool ok = exec(db, "PRAGMA synchronous=OFF") && exec(db, "BEGIN");
  auto group = [&](int kind, const std::string& name, const std::string& label) {
    exec(db, fmt::format("INSERT INTO rollup_groups (kind, name, label, last_bucket_ns) VALUES "
                         "({}, '{}', '{}', {})",
                         kind, name, label, from));
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
  };
  std::vector<std::int64_t> comms, cgroups;
  for (int i = 0; i < 40; ++i) comms.push_back(group(1, fmt::format("service-{}", i), ""));
  for (int i = 0; i < 30; ++i) {
    cgroups.push_back(
        group(2, fmt::format("/system.slice/docker-{:064x}.scope", 0x5eed0000ull + i), ""));
  }
  Writer w;
  w.db = db;
  sqlite3_prepare_v2(db,
                     "INSERT INTO rollups (step_s, host_id, kind, bucket_ns, other, group_id,"
                     " cpu_ns, rss_max, rss_sum, points, processes) VALUES"
                     " (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                     -1, &w.row, nullptr);
  for (int h = 0; h < hosts && ok; ++h) {
    ok = exec(db, fmt::format("INSERT INTO series_hosts (host) VALUES ('host-{:03}')", h));
    const auto host = static_cast<std::int64_t>(sqlite3_last_insert_rowid(db));
    for (int hour = 0; hour < hours; ++hour) {
      // Processes change every hour: new incarnations, new group rows.
      std::vector<std::int64_t> processes;
      for (int p = 0; p < 20; ++p) {
        processes.push_back(group(3, fmt::format("{}:{}", 1000 + p + hour * 20, from + h),
                                  fmt::format("service-{}", p)));
      }
      const std::uint64_t hour_ns = from + static_cast<std::uint64_t>(hour) * kHour;
      for (int m = 0; m < 60 && hour >= hours - minute_hours; ++m) {
        w.bucket(60, host, hour_ns + static_cast<std::uint64_t>(m) * kMinute, 10, 5, comms, cgroups,
                 processes);
      }
      w.bucket(3600, host, hour_ns, 20, 20, comms, cgroups, processes);
    }
  }
  sqlite3_finalize(w.row);
  ok = ok && exec(db, "COMMIT") && exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
  sqlite3_close(db);
  return ok;
}

// The floor: count(*) of the rows a query reads, by the same key.
double floor_ms(const fs::path& db_path, int hosts, int step_s, int kind, std::uint64_t from,
                std::uint64_t to, const std::string& only_host) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* q = nullptr;
  sqlite3_prepare_v2(db,
                     "SELECT count(*) FROM rollups r JOIN series_hosts h ON h.host_id = r.host_id"
                     " WHERE r.step_s = ?1 AND h.host = ?2 AND r.kind = ?3 AND r.bucket_ns >= ?4"
                     " AND r.bucket_ns < ?5",
                     -1, &q, nullptr);
  const auto begin = std::chrono::steady_clock::now();
  std::int64_t rows = 0;
  for (int h = 0; h < hosts; ++h) {
    const std::string host = only_host.empty() ? fmt::format("host-{:03}", h) : only_host;
    for (int k : {0, kind}) {
      sqlite3_bind_int64(q, 1, step_s);
      sqlite3_bind_text(q, 2, host.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(q, 3, k);
      sqlite3_bind_int64(q, 4, static_cast<sqlite3_int64>(from));
      sqlite3_bind_int64(q, 5, static_cast<sqlite3_int64>(to));
      if (sqlite3_step(q) == SQLITE_ROW) rows += sqlite3_column_int64(q, 0);
      sqlite3_reset(q);
      if (k == 0 && kind == 0) break;
    }
    if (!only_host.empty()) break;
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rows > 0 ? ms : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = 100, hours = 24, repetitions = 7;
  int minute_hours = -1;  // the last hours with minute rollups; -1: all
  fs::path dir = fs::path(TALLY_BENCH_DEFAULT_DIR) / "series";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--hosts")) hosts = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--hours")) hours = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repetitions")) repetitions = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--minute-hours")) minute_hours = std::atoi(argv[i + 1]);
  }
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path db = dir / "collector.db";
  {
    tally::collector::BatchStore::Options options;
    options.path = db.string();
    auto store = tally::collector::BatchStore::open(options);  // the schema
    if (!store.ok()) {
      std::fprintf(stderr, "series_bench: %s\n", store.error().message().c_str());
      return 1;
    }
  }
  // Whole hours, ending two hours ago: the hour rollups cover the window.
  const auto now_s = static_cast<std::uint64_t>(std::time(nullptr));
  const std::uint64_t to = (now_s - now_s % 3600 - 2 * 3600) * kS;
  const std::uint64_t from = to - static_cast<std::uint64_t>(hours) * kHour;
  if (minute_hours < 0) minute_hours = hours;
  if (!populate(db, hosts, hours, minute_hours, from)) return 1;
  auto queries = tally::collector::QueryStore::open(db.string());
  if (!queries.ok()) {
    std::fprintf(stderr, "series_bench: %s\n", queries.error().message().c_str());
    return 1;
  }

  struct Case {
    const char* name;
    std::function<bool()> run;
    int floor_step_s;
    int floor_kind;
    std::string floor_host;
  };
  auto series = [&](std::optional<std::string> host, GroupKind by, std::uint64_t step_s) {
    return [&, host, by, step_s] {
      tally::collector::SeriesQuery q;
      q.host = host;
      q.group_by = by;
      q.from = from;
      q.to = to;
      q.step_ns = step_s * kS;
      auto rows = (*queries)->series(q);
      if (!rows.ok()) std::fprintf(stderr, "series_bench: %s\n", rows.error().message().c_str());
      return rows.ok() && rows->total.cpu_ns_total > 0;
    };
  };
  auto top = [&](GroupKind by) {
    return [&, by] {
      tally::collector::TopQuery q;
      q.by = by;
      q.from = from;
      q.to = to;
      q.window_given = true;
      auto rows = (*queries)->top(q);
      if (!rows.ok()) std::fprintf(stderr, "series_bench: %s\n", rows.error().message().c_str());
      return rows.ok() && !rows->top.empty();
    };
  };
  // What the page asks for: the fleet by host, a host by comm and cgroup
  // (5-minute steps: minute rollups), the fleet's top processes and comms.
  std::vector<Case> cases = {
      {"fleet_by_host_5m", series(std::nullopt, GroupKind::host, 300), 60, 0, ""},
      {"host_by_comm_5m", series("host-000", GroupKind::comm, 300), 60, 1, "host-000"},
      {"host_by_cgroup_5m", series("host-000", GroupKind::cgroup, 300), 60, 2, "host-000"},
      {"fleet_by_comm_1h", series(std::nullopt, GroupKind::comm, 3600), 3600, 1, ""},
      {"fleet_top_processes", top(GroupKind::process), 3600, 3, ""},
      {"fleet_top_comms", top(GroupKind::comm), 3600, 1, ""},
  };
  nlohmann::json out;
  out["hosts"] = hosts;
  out["hours"] = hours;
  double worst = 0;
  for (const Case& c : cases) {
    std::vector<double> ms, floors;
    for (int r = 0; r < repetitions; ++r) {
      const auto begin = std::chrono::steady_clock::now();
      if (!c.run()) return 1;
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
              .count());
      floors.push_back(floor_ms(db, hosts, c.floor_step_s, c.floor_kind, from, to, c.floor_host));
    }
    const double median = tally::bench::median(ms);
    const double floor = tally::bench::median(floors);
    worst = std::max(worst, median);
    out["queries"][c.name] = {{"ms", tally::bench::summary(ms)},
                              {"count_floor_ms", floor},
                              {"over_floor", floor > 0 ? median / floor : 0}};
  }
  out["worst_ms"] = worst;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
