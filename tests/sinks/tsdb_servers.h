// Real time-series servers on loopback for the sink tests: VictoriaMetrics
// (influx /write and remote write /api/v1/write) and Prometheus 2.42 as a
// remote write receiver (with or without an out-of-order window), each able
// to hand back every raw sample it holds, per series and timestamp, to check
// exactly-once storage.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "line_protocol_expect.h"
#include "server_support.h"
#include "tally/time_util.h"
#include "temp_dir.h"

namespace tally::test {

// series_key(name, labels) (line_protocol_expect.h) -> ts ms -> every value
// stored there.
using StoredSeries = std::map<std::string, std::map<std::int64_t, std::vector<double>>>;

// Splits a JSON "metric" object into its name and the other labels.
inline std::string key_of(const nlohmann::json& metric) {
  std::map<std::string, std::string> labels;
  std::string name;
  for (const auto& [k, v] : metric.items()) {
    if (k == "__name__") {
      name = v;
    } else {
      labels[k] = v;
    }
  }
  return series_key(name, labels);
}

class RemoteWriteServer {
 public:
  virtual ~RemoteWriteServer() = default;
  virtual std::string write_path() const = 0;
  virtual std::uint16_t port() const = 0;
  virtual ServerRun& server() = 0;
  // Every tally_ sample it holds.
  virtual StoredSeries stored() = 0;
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
};

class VictoriaMetricsServer final : public RemoteWriteServer {
 public:
  // `extra_args` are appended to its command line (e.g. -promscrape.config);
  // `name` tells two of them apart in one TempDir.
  explicit VictoriaMetricsServer(TempDir& dir, const std::vector<std::string>& extra_args = {},
                                 const std::string& name = "vm")
      : port_(free_port()),
        server_("victoria-metrics",
                with({find_program("victoria-metrics"), "-storageDataPath=" + (dir / name),
                      "-httpListenAddr=127.0.0.1:" + std::to_string(port_),
                      // Retries re-send samples; dedup keeps one per series and ms.
                      "-dedup.minScrapeInterval=1ms", "-loggerLevel=ERROR", "-retentionPeriod=1y",
                      // Old samples are accepted as they are (the backlog case).
                      "-search.disableCache"},
                     extra_args),
                "http://127.0.0.1:" + std::to_string(port_) + "/health") {}

  std::string write_path() const override { return "/api/v1/write"; }
  std::uint16_t port() const override { return port_; }
  ServerRun& server() override { return server_; }

  StoredSeries stored() override {
    EXPECT_EQ(http_get(url("/internal/force_flush")).status, 200);
    const std::uint64_t end_s = realtime_ns() / 1'000'000'000ULL + 3600;
    const HttpResult r =
        http_get(url("/api/v1/export?match[]=" + url_encode("{__name__=~\"tally_.*\"}") +
                     "&start=0&end=" + std::to_string(end_s)));
    EXPECT_EQ(r.status, 200) << r.body;
    StoredSeries out;
    std::stringstream lines(r.body);
    std::string line;
    while (std::getline(lines, line)) {
      const auto j = nlohmann::json::parse(line);
      auto& series = out[key_of(j["metric"])];
      for (std::size_t i = 0; i < j["timestamps"].size(); ++i) {
        series[j["timestamps"][i].get<std::int64_t>()].push_back(j["values"][i].get<double>());
      }
    }
    return out;
  }

  // The label sets of the distinct series whose name matches `name_regex`.
  nlohmann::json series(const std::string& name_regex) {
    EXPECT_EQ(http_get(url("/internal/force_flush")).status, 200);
    const HttpResult r =
        http_get(url("/api/v1/series?match[]=" + url_encode("{__name__=~\"" + name_regex + "\"}") +
                     "&start=0&end=" + std::to_string(realtime_ns() / 1'000'000'000ULL + 3600)));
    EXPECT_EQ(r.status, 200) << r.body;
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_discarded() ? nlohmann::json::array() : j["data"];
  }

 private:
  static std::vector<std::string> with(std::vector<std::string> args,
                                       const std::vector<std::string>& more) {
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  std::uint16_t port_;
  ServerRun server_;
};

struct PrometheusSetup {
  std::string out_of_order_window;  // e.g. "4h"; empty: none (Prometheus's default)
  bool scrape_itself = false;       // moves its head to now, as a real one's is
};

class PrometheusServer final : public RemoteWriteServer {
 public:
  // `scrape_configs`: more scrape_configs list items, as YAML.
  PrometheusServer(TempDir& dir, PrometheusSetup setup, const std::string& scrape_configs = {})
      : port_(free_port()) {
    const std::string config = dir / "prometheus-rw.yml";
    std::ofstream out(config);
    out << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n";
    if (!setup.out_of_order_window.empty()) {
      out << "storage:\n  tsdb:\n    out_of_order_time_window: " << setup.out_of_order_window
          << "\n";
    }
    if (setup.scrape_itself || !scrape_configs.empty()) out << "scrape_configs:\n";
    if (setup.scrape_itself) {
      out << "  - job_name: prometheus\n    static_configs:\n"
          << "      - targets: ['127.0.0.1:" << port_ << "']\n";
    }
    out << scrape_configs;
    out.close();
    server_ = std::make_unique<ServerRun>(
        "prometheus",
        std::vector<std::string>{find_program("prometheus"), "--config.file=" + config,
                                 "--storage.tsdb.path=" + (dir / "prometheus-rw"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--web.enable-remote-write-receiver", "--log.level=error"},
        url("/-/ready"));
  }

  std::string write_path() const override { return "/api/v1/write"; }
  std::uint16_t port() const override { return port_; }
  ServerRun& server() override { return *server_; }

  // With scrape_itself: waits (up to 30 s) for its first scrape of itself,
  // which moves its head to now. Prometheus starts scraping some seconds
  // after it is ready.
  bool wait_for_own_scrape() {
    for (int i = 0; i < 300; ++i) {
      const HttpResult r = http_get(url("/api/v1/query?query=" + url_encode("up")));
      if (r.status == 200 && r.body.find("\"1\"") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  // A range selector at `now` returns raw samples, as stored.
  StoredSeries stored() override { return stored_within("5h"); }
  StoredSeries stored_within(const std::string& range) {
    const std::string query = "{__name__=~\"tally_.*\"}[" + range + "]";
    const std::uint64_t now_s = realtime_ns() / 1'000'000'000ULL + 1;
    const HttpResult r = http_get(
        url("/api/v1/query?query=" + url_encode(query) + "&time=" + std::to_string(now_s)));
    EXPECT_EQ(r.status, 200) << r.body;
    StoredSeries out;
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded()) return out;
    for (const auto& result : j["data"]["result"]) {
      auto& series = out[key_of(result["metric"])];
      for (const auto& v : result["values"]) {
        const auto ms = static_cast<std::int64_t>(v[0].get<double>() * 1000.0 + 0.5);
        series[ms].push_back(std::stod(v[1].get<std::string>()));
      }
    }
    return out;
  }

 private:
  std::uint16_t port_;
  std::unique_ptr<ServerRun> server_;
};

}  // namespace tally::test
