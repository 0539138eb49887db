// tallyd ships with format = "influx" to a real InfluxDB 1.x (Debian's
// influxdb, 1.6) through the fault-injecting proxy, across server errors
// and an InfluxDB restart. InfluxDB keeps one point per (series,
// timestamp), overwriting re-sends, so every committed sample must be one
// row with its values, and no row may be extra.
#include <gtest/gtest.h>

#include <fstream>

#include "line_protocol_expect.h"
#include "sink_system.h"

namespace tally::test {
namespace {

class InfluxDb {
 public:
  explicit InfluxDb(TempDir& dir) : port_(free_port()), config_(dir / "influxdb.conf") {
    std::ofstream(config_) << "reporting-disabled = true\n"
                           << "bind-address = \"127.0.0.1:" << free_port() << "\"\n"
                           << "[meta]\n  dir = \"" << dir / "meta"
                           << "\"\n"
                           << "[data]\n  dir = \"" << dir / "data"
                           << "\"\n  wal-dir = \"" << dir / "wal"
                           << "\"\n  query-log-enabled = false\n"
                           << "[http]\n  bind-address = \"127.0.0.1:" << port_
                           << "\"\n  log-enabled = false\n"
                           << "[monitor]\n  store-enabled = false\n"
                           << "[continuous_queries]\n  enabled = false\n";
    server_ = std::make_unique<ServerRun>(
        "influxd", std::vector<std::string>{find_program("influxd"), "-config", config_},
        url("/ping"));
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::uint16_t port() const { return port_; }
  ServerRun& server() { return *server_; }

  HttpResult query(const std::string& q, const std::string& db = "") {
    return http_post(url("/query?epoch=ns" + (db.empty() ? "" : "&db=" + db)),
                     "q=" + url_encode(q));
  }

 private:
  std::uint16_t port_;
  std::string config_;
  std::unique_ptr<ServerRun> server_;
};

TEST(InfluxDbSink, EveryCommittedSampleIsOneRowThroughFaultsAndARestart) {
  TALLY_REQUIRE_BPF();
  ASSERT_FALSE(find_program("influxd").empty())
      << "influxd is not installed (scripts/bootstrap installs Debian's influxdb)";
  TempDir dir;
  InfluxDb influx(dir);
  ASSERT_TRUE(influx.server().start()) << influx.server().error();
  ASSERT_EQ(influx.query("CREATE DATABASE tally").status, 200);
  SinkSystem sys(dir, influx.port());
  sys.start_agent(
      {"--endpoint", sys.proxy_url("/write"), "--format", "influx", "--database", "tally"});

  phase("healthy, with an oddly named burner", 2s);
  sys.burn_odd(300);
  phase("healthy", 4s);
  sys.proxy().set_mode(FaultProxy::Mode::error_500);
  phase("500 responses", 4s);
  sys.proxy().set_slow_delay_ms(4000);
  sys.proxy().set_mode(FaultProxy::Mode::slow);
  phase("responses slower than the timeout", 7s);
  sys.proxy().set_mode(FaultProxy::Mode::pass);
  influx.server().stop();
  phase("InfluxDB down", 5s);
  ASSERT_TRUE(influx.server().start()) << influx.server().error();
  phase("healthy after the restart", 5s);
  sys.flush_and_stop();
  EXPECT_GT(sys.proxy().faulted(), 3u);
  EXPECT_EQ(sys.outbox_stats().pending_batches, 0u);

  // Rows as InfluxDB returns them: columns time, then tags and fields.
  std::map<std::string, std::map<std::uint64_t, std::vector<nlohmann::json>>> rows;
  std::size_t row_count = 0;
  for (const char* m : {"tally_process", "tally_host"}) {
    const HttpResult r = influx.query(std::string("SELECT * FROM ") + m, "tally");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = nlohmann::json::parse(r.body);
    const auto& series = j["results"][0]["series"];
    ASSERT_EQ(series.size(), 1u) << r.body.substr(0, 500);
    const auto& columns = series[0]["columns"];
    for (const auto& values : series[0]["values"]) {
      nlohmann::json row;
      for (std::size_t i = 0; i < columns.size(); ++i)
        row[columns[i].get<std::string>()] = values[i];
      std::map<std::string, std::string> tags;
      for (const char* t : {"cgroup", "comm", "host", "pid", "start_time"}) {
        if (row.contains(t) && row[t].is_string() && !row[t].get<std::string>().empty()) {
          tags[t] = row[t];
        }
      }
      rows[series_key(m, tags)][row["time"].get<std::uint64_t>()].push_back(row);
      ++row_count;
    }
  }

  const auto expected = expected_points(sys.committed(), TagDialect::influxdb_1x);
  std::size_t missing = 0, duplicated = 0, wrong = 0;
  bool saw_odd_name = false;
  for (const auto& p : expected) {
    if (p.tags.count("comm") && p.tags.at("comm") == kOddBurnerName) saw_odd_name = true;
    const auto& found = rows[series_key(p.measurement, p.tags)][p.ts_ns];
    if (found.empty()) {
      if (++missing <= 3)
        ADD_FAILURE() << "missing " << series_key(p.measurement, p.tags) << " @" << p.ts_ns;
      continue;
    }
    if (found.size() > 1) ++duplicated;
    for (const auto& [field, value] : p.fields) {
      if (found[0][field].get<double>() != value && ++wrong <= 3) {
        ADD_FAILURE() << series_key(p.measurement, p.tags) << " " << field << ": "
                      << found[0][field] << " stored, " << value << " committed";
      }
    }
  }
  std::printf(
      "%zu samples committed; InfluxDB holds %zu rows: %zu missing, %zu duplicated, "
      "%zu wrong\n",
      sys.committed().size(), row_count, missing, duplicated, wrong);
  EXPECT_TRUE(saw_odd_name);
  EXPECT_EQ(row_count, expected.size()) << "no row that tallyd did not commit";
  EXPECT_EQ(missing + duplicated + wrong, 0u);
}

}  // namespace
}  // namespace tally::test
