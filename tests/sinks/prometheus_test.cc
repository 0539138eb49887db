// tallyd's /metrics (--prometheus-listen): promtool accepts it, a real
// Prometheus (Debian's prometheus) scrapes it, and its query API returns
// the CPU counter of a burner of known cost.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "sink_system.h"

namespace tally::test {
namespace {

// "prometheus exporter listening on 127.0.0.1:PORT" in tallyd's log.
std::string exporter_address(TallydRun& agent) {
  auto line = agent.process().wait_for_stderr("prometheus exporter listening on", 30s);
  if (!line) return {};
  std::smatch m;
  const std::string err = agent.process().stderr_text();
  if (!std::regex_search(err, m, std::regex("listening on (127\\.0\\.0\\.1:[0-9]+)"))) return {};
  return m[1];
}

class Prometheus {
 public:
  Prometheus(TempDir& dir, const std::string& target) : port_(free_port()) {
    const std::string config = dir / "prometheus.yml";
    std::ofstream(config) << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                          << "scrape_configs:\n  - job_name: tallyd\n    static_configs:\n"
                          << "      - targets: ['" << target << "']\n";
    server_ = std::make_unique<ServerRun>(
        "prometheus",
        std::vector<std::string>{find_program("prometheus"), "--config.file=" + config,
                                 "--storage.tsdb.path=" + (dir / "prometheus"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                 "--log.level=warn"},
        url("/-/ready"));
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  ServerRun& server() { return *server_; }

  // The first result's value of an instant query, or nullopt.
  std::optional<double> query(const std::string& promql) {
    const HttpResult r = http_get(url("/api/v1/query?query=" + url_encode(promql)));
    if (r.status != 200) return std::nullopt;
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j["data"]["result"].empty()) return std::nullopt;
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  }

 private:
  std::uint16_t port_;
  std::unique_ptr<ServerRun> server_;
};

TEST(PrometheusExporter, PromtoolAcceptsThePageAndPrometheusScrapesABurnersCpuCounter) {
  TALLY_REQUIRE_BPF();
  ASSERT_FALSE(find_program("prometheus").empty())
      << "prometheus is not installed (scripts/bootstrap installs it)";
  TempDir dir;
  auto agent = std::make_unique<TallydRun>(
      std::vector<std::string>{"--interval", "1", "--outbox", dir / "outbox.db", "--socket",
                               dir / "tally.sock", "--prometheus-listen", "127.0.0.1:0"});
  ASSERT_TRUE(agent->wait_ready("control socket")) << agent->process().stderr_text();
  const std::string address = exporter_address(*agent);
  ASSERT_FALSE(address.empty()) << agent->process().stderr_text();
  const std::string metrics_url = "http://" + address + "/metrics";

  Prometheus prometheus(dir, address);
  ASSERT_TRUE(prometheus.server().start()) << prometheus.server().error();
  std::optional<double> up;
  for (int i = 0; i < 100 && up != 1.0; ++i) {
    std::this_thread::sleep_for(200ms);
    up = prometheus.query("up{job=\"tallyd\"}");
  }
  ASSERT_EQ(up, 1.0) << "Prometheus never scraped tallyd at " << address;

  // A burner of known cost (it measures its own CPU time), then two
  // intervals so its exit is sampled and scraped.
  const auto burner = run_burner({"burn", "1500"});
  const auto pid = burner["pid"].get<std::uint64_t>();
  const double burned_s = burner["cpu_ns"].get<double>() / 1e9;
  phase("sampling and scraping the burner's exit", 3s);

  const std::string selector =
      "tally_process_cpu_seconds_total{pid=\"" + std::to_string(pid) + "\"}";
  // The series went stale when the exited burner left the page, so ask for
  // the largest value scraped in the last minute.
  const auto scraped = prometheus.query("max_over_time(" + selector + "[1m])");
  ASSERT_TRUE(scraped.has_value()) << selector << " is not in Prometheus";
  std::printf("burner pid %llu burned %.4f s; Prometheus has %.4f s\n",
              static_cast<unsigned long long>(pid), burned_s, *scraped);
  EXPECT_NEAR(*scraped, burned_s, 0.02 * burned_s + 0.02);

  // promtool's linter on the page as served.
  const HttpResult page = http_get(metrics_url);
  ASSERT_EQ(page.status, 200);
  Subprocess::Options o;
  o.stdin_data = page.body;
  Subprocess promtool({find_program("promtool"), "check", "metrics"}, o);
  const auto code = promtool.wait(30s);
  promtool.join_output();
  std::string promtool_out;
  for (const auto& l : promtool.lines()) promtool_out += l + "\n";
  EXPECT_EQ(code, 0) << promtool_out << promtool.stderr_text();
  EXPECT_TRUE(promtool_out.empty() && promtool.stderr_text().empty())
      << "promtool found problems:\n"
      << promtool_out << promtool.stderr_text();

  // The exited burner dropped out after a scrape interval.
  EXPECT_EQ(page.body.find("pid=\"" + std::to_string(pid) + "\""), std::string::npos)
      << "an exited process is still on the page";
  EXPECT_NE(page.body.find("# TYPE tally_outbox_pending_batches gauge"), std::string::npos);
  EXPECT_EQ(http_get("http://" + address + "/other").status, 404);

  auto status = run({TALLY_CLI_PATH, "status", "--json", "--socket", dir / "tally.sock"}, 30s);
  const auto s = nlohmann::json::parse(status.out);
  EXPECT_EQ(s["prometheus"]["listen"], address);
  EXPECT_GT(s["prometheus"]["scrapes"].get<std::uint64_t>(), 3u);
  prometheus.server().stop();
  EXPECT_EQ(agent->stop(), 0);
}

TEST(PrometheusExporter, TallydRefusesAListenAddressThatIsNotIpAndPort) {
  RunResult r = run({TALLYD_PATH, "--prometheus-listen", "localhost:9464"}, 10s);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--prometheus-listen"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("e.g. 127.0.0.1:9464"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tally::test
