// packaging/grafana/tally.json, used the way Grafana would use it (no Grafana
// runs here):
// - the JSON is a dashboard Grafana imports: a schemaVersion, unique panel
//   ids, a place on the grid for each, a data source variable (filled by the
//   import's __inputs) that every panel and query uses, a host variable, and
//   a PromQL expression in every target;
// - tallyd (1 s intervals) ships to a real VictoriaMetrics by remote_write,
//   to another by influx, and to a real Prometheus 2.42 by remote_write,
//   each of which also scrapes tallyd's /metrics as docs/sinks.md says; a
//   burner spins meanwhile. Every target's expression, with the variables
//   substituted as Grafana substitutes them, is run as a range query against
//   each server and must return data (the burner among the top processes),
//   and the host variable's query must list the host.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <variant>

#include "sink_system.h"
#include "tsdb_servers.h"

namespace tally::test::grafana_dashboard {

using nlohmann::json;

// The intervals of the run: tallyd's interval, which is also the scrape
// interval (docs/sinks.md has the data source's scrape interval set to
// tallyd's), and the step Grafana would pick for a narrow panel.
constexpr int kScrapeIntervalS = 1;
constexpr int kStepS = 2;
constexpr const char* kBurnerComm = "grafana-burner";
constexpr const char* kTopProcessesTitle = "Top processes by CPU";

json load_dashboard() {
  std::ifstream in(DASHBOARD_PATH);
  return json::parse(in, nullptr, false);
}

bool is_row(const json& panel) { return panel.value("type", "") == "row"; }

// Every panel, those nested in collapsed rows included.
std::vector<json> all_panels(const json& dashboard) {
  std::vector<json> out;
  for (const auto& p : dashboard.value("panels", json::array())) {
    out.push_back(p);
    for (const auto& nested : p.value("panels", json::array())) out.push_back(nested);
  }
  return out;
}

// The variable a datasource reference names ("${datasource}" or
// "$datasource" as its uid), or "" for a fixed data source.
std::string variable_in(const json& datasource) {
  if (!datasource.is_object() || !datasource.contains("uid") || !datasource["uid"].is_string()) {
    return {};
  }
  std::smatch m;
  const std::string uid = datasource["uid"];
  if (!std::regex_match(uid, m, std::regex(R"(\$\{?(\w+)\}?)"))) return {};
  return m[1];
}

const json* variable(const json& dashboard, const std::string& name) {
  for (const auto& v : dashboard["templating"]["list"]) {
    if (v.value("name", "") == name) return &v;
  }
  return nullptr;
}

// A query variable's query: a string (older dashboards) or the query
// editor's object.
std::string variable_query(const json& v) {
  const json& q = v.value("query", json());
  if (q.is_string()) return q;
  if (q.is_object() && q.contains("query") && q["query"].is_string()) return q["query"];
  return {};
}

struct Target {
  std::string panel;
  std::string ref;
  std::string expr;
  std::string legend;
};

std::vector<Target> targets_of(const json& dashboard) {
  std::vector<Target> out;
  for (const auto& p : all_panels(dashboard)) {
    for (const auto& t : p.value("targets", json::array())) {
      out.push_back({p.value("title", ""), t.value("refId", ""), t.value("expr", ""),
                     t.value("legendFormat", "")});
    }
  }
  return out;
}

// Grafana's escaping of a multi-value variable's values inside a PromQL
// regex (the Prometheus data source's prometheusSpecialRegexEscape): each
// regex metacharacter gets a backslash, doubled because the value sits in a
// PromQL string literal.
std::string regex_escape(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (std::string_view("\\^$*+?.()|{}[]'").find(c) != std::string_view::npos) out += "\\\\";
    out += c;
  }
  return out;
}

// Grafana's interpolation of $name, ${name}, ${name:format} and [[name]];
// names it does not know are added to `unknown`.
std::string interpolate(const std::string& expr, const std::map<std::string, std::string>& vars,
                        std::set<std::string>& unknown) {
  static const std::regex ref(R"(\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\])");
  std::string out;
  auto last = expr.cbegin();
  for (std::sregex_iterator it(expr.begin(), expr.end(), ref), end; it != end; ++it) {
    const std::smatch& m = *it;
    const std::string name = m[1].matched ? m[1] : m[2].matched ? m[2] : m[3];
    out.append(last, m[0].first);
    const auto v = vars.find(name);
    if (v == vars.end()) {
      unknown.insert(name);
      out += m.str(0);
    } else {
      out += v->second;
    }
    last = m[0].second;
  }
  out.append(last, expr.cend());
  return out;
}

// The label names a legend format uses ({{comm}} -> comm).
std::set<std::string> legend_labels(const std::string& legend) {
  static const std::regex label(R"(\{\{\s*(\w+)\s*\}\})");
  std::set<std::string> out;
  for (std::sregex_iterator it(legend.begin(), legend.end(), label), end; it != end; ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

std::string host_name() {
  char buf[256] = {};
  return gethostname(buf, sizeof buf - 1) == 0 ? buf : "unknown";
}

TEST(GrafanaDashboard, IsADashboardGrafanaImportsWithADataSourceAndAHostVariable) {
  const json d = load_dashboard();
  ASSERT_FALSE(d.is_discarded()) << DASHBOARD_PATH << " is not JSON";
  ASSERT_TRUE(d.contains("schemaVersion") && d["schemaVersion"].is_number_integer());
  EXPECT_GE(d["schemaVersion"].get<int>(), 36) << "older than Grafana 9.3's model";
  EXPECT_FALSE(d.value("title", "").empty());
  EXPECT_FALSE(d.value("uid", "").empty());
  ASSERT_TRUE(d.contains("templating") && d["templating"]["list"].is_array());

  // One data source variable, of the Prometheus type, which the import's
  // input fills in.
  std::string ds_var;
  for (const auto& v : d["templating"]["list"]) {
    if (v.value("type", "") != "datasource") continue;
    EXPECT_TRUE(ds_var.empty()) << "two data source variables";
    ds_var = v.value("name", "");
    EXPECT_EQ(v.value("query", ""), "prometheus");
  }
  ASSERT_FALSE(ds_var.empty()) << "no data source variable";
  const std::string text = d.dump();
  ASSERT_TRUE(d.contains("__inputs") && d["__inputs"].is_array() && !d["__inputs"].empty());
  for (const auto& input : d["__inputs"]) {
    EXPECT_EQ(input.value("type", ""), "datasource");
    EXPECT_EQ(input.value("pluginId", ""), "prometheus");
    const std::string name = input.value("name", "");
    EXPECT_NE(text.find("${" + name + "}"), std::string::npos)
        << "the import input " << name << " is used nowhere";
  }

  // The host variable: a label_values query on the data source variable.
  const json* host = variable(d, "host");
  ASSERT_NE(host, nullptr) << "no host variable";
  EXPECT_EQ(host->value("type", ""), "query");
  EXPECT_EQ(variable_in(host->value("datasource", json())), ds_var);
  EXPECT_TRUE(std::regex_match(variable_query(*host), std::regex(R"(label_values\(.+,\s*host\))")))
      << variable_query(*host);

  const std::set<std::string> known_vars{ds_var,       "host",          "__rate_interval",
                                         "__interval", "__interval_ms", "__range",
                                         "__range_s",  "__range_ms"};
  std::set<int> ids;
  std::vector<json> placed;
  for (const auto& p : all_panels(d)) {
    const std::string title = p.value("title", "");
    SCOPED_TRACE("panel \"" + title + "\"");
    ASSERT_TRUE(p.contains("id") && p["id"].is_number_integer());
    EXPECT_TRUE(ids.insert(p["id"].get<int>()).second) << "id " << p["id"] << " is used twice";
    ASSERT_TRUE(p.contains("gridPos"));
    const json& g = p["gridPos"];
    for (const char* k : {"h", "w", "x", "y"}) {
      ASSERT_TRUE(g.contains(k) && g[k].is_number_integer()) << "gridPos." << k;
    }
    EXPECT_GT(g["w"].get<int>(), 0);
    EXPECT_GT(g["h"].get<int>(), 0);
    EXPECT_LE(g["x"].get<int>() + g["w"].get<int>(), 24) << "wider than the grid";
    for (const auto& other : placed) {
      const json& o = other["gridPos"];
      const bool apart = g["x"].get<int>() >= o["x"].get<int>() + o["w"].get<int>() ||
                         o["x"].get<int>() >= g["x"].get<int>() + g["w"].get<int>() ||
                         g["y"].get<int>() >= o["y"].get<int>() + o["h"].get<int>() ||
                         o["y"].get<int>() >= g["y"].get<int>() + g["h"].get<int>();
      EXPECT_TRUE(apart) << "overlaps \"" << other.value("title", "") << "\"";
    }
    placed.push_back(p);
    if (is_row(p)) continue;

    EXPECT_EQ(variable_in(p.value("datasource", json())), ds_var)
        << "the panel's data source is not $" << ds_var;
    ASSERT_TRUE(p.contains("targets") && p["targets"].is_array() && !p["targets"].empty());
    std::set<std::string> refs;
    for (const auto& t : p["targets"]) {
      const std::string ref = t.value("refId", "");
      EXPECT_FALSE(ref.empty());
      EXPECT_TRUE(refs.insert(ref).second) << "refId " << ref << " twice";
      if (t.contains("datasource")) {
        EXPECT_EQ(variable_in(t["datasource"]), ds_var) << ref;
      }
      const std::string expr = t.value("expr", "");
      EXPECT_FALSE(expr.empty()) << "target " << ref << " has no expr";
      EXPECT_NE(expr.find("$host"), std::string::npos) << ref << " ignores the host variable";
      std::set<std::string> unknown;
      interpolate(expr, {}, unknown);
      for (const auto& name : unknown) {
        EXPECT_TRUE(known_vars.count(name)) << ref << " uses an unknown variable $" << name;
      }
    }
  }
  EXPECT_GE(ids.size(), 6u);
}

// One server's query API (VictoriaMetrics and Prometheus share it).
class QueryApi {
 public:
  QueryApi(std::string name, std::string base_url)
      : name_(std::move(name)), base_(std::move(base_url)) {}
  const std::string& name() const { return name_; }

  // The "data" of a successful answer, or a description of what went wrong.
  std::variant<json, std::string> get(const std::string& path_and_query) const {
    const HttpResult r = http_get(base_ + path_and_query);
    const json j = json::parse(r.body, nullptr, false);
    if (r.status != 200 || j.is_discarded() || j.value("status", "") != "success") {
      return "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 300);
    }
    return j["data"];
  }

 private:
  std::string name_;
  std::string base_;
};

struct Window {
  std::uint64_t start_s;
  std::uint64_t end_s;
};

// What is wrong with one target's range query on one server ("" if nothing).
std::string check_target(const QueryApi& api, const Target& t, const std::string& expr,
                         const Window& w) {
  const auto answer = api.get(
      "/api/v1/query_range?query=" + url_encode(expr) + "&start=" + std::to_string(w.start_s) +
      "&end=" + std::to_string(w.end_s) + "&step=" + std::to_string(kStepS));
  if (const auto* error = std::get_if<std::string>(&answer)) return *error;
  const json& result = std::get<json>(answer)["result"];
  if (result.empty()) return "no data";
  std::size_t finite = 0;
  double burner_max = 0;
  for (const auto& series : result) {
    for (const auto& label : legend_labels(t.legend)) {
      if (!series["metric"].contains(label)) {
        return "a series lacks the label {{" + label +
               "}} of its legend: " + series["metric"].dump();
      }
    }
    for (const auto& v : series["values"]) {
      const double x = std::stod(v[1].get<std::string>());
      if (!std::isfinite(x)) continue;
      // Every panel shows CPU, memory, counts or rates of counters.
      if (x < 0) return "a negative value: " + std::to_string(x) + " in " + series["metric"].dump();
      ++finite;
      if (series["metric"].value("comm", "") == kBurnerComm) burner_max = std::max(burner_max, x);
    }
  }
  if (finite == 0) return "only NaN or infinite values";
  // A busy loop uses a whole CPU when it gets one; on a busy machine less.
  if (t.panel == kTopProcessesTitle && burner_max < 0.3) {
    return std::string("the burner (") + kBurnerComm + ") is not among them at 0.3 CPUs or more" +
           " (max " + std::to_string(burner_max) + ")";
  }
  return {};
}

// Every problem of every target on one server, with `host` substituted as
// given (one host selected, or All).
std::vector<std::string> target_problems(const QueryApi& api, const json& dashboard,
                                         const std::string& host_value, const Window& w) {
  const int range_s = static_cast<int>(w.end_s - w.start_s);
  // Grafana: $__rate_interval = max($__interval + scrape interval, 4 x scrape interval).
  const int rate_s = std::max(kStepS + kScrapeIntervalS, 4 * kScrapeIntervalS);
  const std::map<std::string, std::string> vars{{"host", host_value},
                                                {"__interval", std::to_string(kStepS) + "s"},
                                                {"__interval_ms", std::to_string(kStepS * 1000)},
                                                {"__rate_interval", std::to_string(rate_s) + "s"},
                                                {"__range", std::to_string(range_s) + "s"},
                                                {"__range_s", std::to_string(range_s)},
                                                {"__range_ms", std::to_string(range_s * 1000)}};
  std::vector<std::string> out;
  for (const Target& t : targets_of(dashboard)) {
    std::set<std::string> unknown;
    const std::string expr = interpolate(t.expr, vars, unknown);
    std::string problem =
        unknown.empty() ? check_target(api, t, expr, w) : "unknown variable $" + *unknown.begin();
    if (!problem.empty()) {
      out.push_back("[host=~\"" + host_value + "\"] " + api.name() + ": \"" + t.panel + "\" " +
                    t.ref + ": " + problem + "\n    " + expr);
    }
  }
  return out;
}

// What is wrong with the host variable's label_values(selector, host) on
// one server, asked as Grafana asks for it ("" if nothing).
std::string host_variable_problem(const QueryApi& api, const json& dashboard, const Window& w) {
  std::smatch m;
  const std::string query = variable_query(*variable(dashboard, "host"));
  if (!std::regex_match(query, m, std::regex(R"(label_values\((.+),\s*(\w+)\))"))) {
    return "host variable: not label_values(...): " + query;
  }
  const auto answer =
      api.get("/api/v1/label/" + m[2].str() + "/values?match[]=" + url_encode(m[1]) +
              "&start=" + std::to_string(w.start_s) + "&end=" + std::to_string(w.end_s));
  if (const auto* error = std::get_if<std::string>(&answer)) {
    return api.name() + ": host variable: " + *error;
  }
  const json& hosts = std::get<json>(answer);
  if (std::find(hosts.begin(), hosts.end(), host_name()) == hosts.end()) {
    return api.name() + ": host variable: " + host_name() + " not in " + hosts.dump();
  }
  return {};
}

// The scrape job docs/sinks.md gives for the health panels: tallyd's own
// figures only (the per-process ones come from the sink), with the host
// label the sinks' samples carry.
std::string tallyd_scrape_job(const std::string& target) {
  std::ostringstream job;
  job << "  - job_name: tallyd\n"
      << "    scrape_interval: " << kScrapeIntervalS << "s\n"
      << "    static_configs:\n"
      << "      - targets: ['" << target << "']\n"
      << "        labels:\n"
      << "          host: '" << host_name() << "'\n"
      << "    metric_relabel_configs:\n"
      << "      - source_labels: [__name__]\n"
      << "        regex: 'tally_(outbox|sink|samples|dropped|exporter)_.*'\n"
      << "        action: keep\n";
  return job.str();
}

std::uint64_t now_s() { return realtime_ns() / 1'000'000'000ULL; }

TEST(GrafanaDashboard, EveryPanelQueryReturnsDataFromTallydsRemoteWriteAndInfluxSinks) {
  TALLY_REQUIRE_BPF();
  for (const char* program : {"victoria-metrics", "prometheus"}) {
    ASSERT_FALSE(find_program(program).empty())
        << program << " is not installed (scripts/bootstrap installs it)";
  }
  const json dashboard = load_dashboard();
  ASSERT_FALSE(dashboard.is_discarded()) << DASHBOARD_PATH << " is not JSON";
  TempDir dir;
  const std::string exporter = "127.0.0.1:" + std::to_string(free_port());
  const std::string scrape_config = dir / "scrape.yml";
  std::ofstream(scrape_config) << "scrape_configs:\n" << tallyd_scrape_job(exporter);
  // Query results near "now" are complete here, with no ingestion delay
  // to allow for (the default holds back the last 30 s).
  const std::vector<std::string> vm_args{"-promscrape.config=" + scrape_config,
                                         "-search.latencyOffset=1s"};
  VictoriaMetricsServer vm_rw(dir, vm_args, "vm-rw");
  VictoriaMetricsServer vm_influx(dir, vm_args, "vm-influx");
  PrometheusServer prometheus(dir, {}, tallyd_scrape_job(exporter));
  for (RemoteWriteServer* s :
       std::initializer_list<RemoteWriteServer*>{&vm_rw, &vm_influx, &prometheus}) {
    ASSERT_TRUE(s->server().start()) << s->server().error();
  }

  const std::string config = write_sink_config(
      dir,
      {"name = \"vm-rw\"\nformat = \"remote_write\"\nurl = \"" + vm_rw.url("/api/v1/write") +
           "\"\n",
       "name = \"vm-influx\"\nformat = \"influx\"\nurl = \"" + vm_influx.url("/write") + "\"\n",
       "name = \"prom-rw\"\nformat = \"remote_write\"\nurl = \"" + prometheus.url("/api/v1/write") +
           "\"\n"});
  const Window seen_from{now_s() - 2, 0};
  TallydRun agent({"--interval", std::to_string(kScrapeIntervalS), "--outbox", dir / "outbox.db",
                   "--socket", dir / "tally.sock", "--config", config, "--prometheus-listen",
                   exporter});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  Subprocess burner({BURNER_PATH, "named", kBurnerComm, "120"});

  // Grafana shows whatever the servers hold when asked: ask until every
  // query has data (the rate() windows fill after a few intervals), or
  // give up with the last round's problems.
  const std::vector<QueryApi> apis{{"VictoriaMetrics (remote_write)", vm_rw.url("")},
                                   {"VictoriaMetrics (influx)", vm_influx.url("")},
                                   {"Prometheus (remote_write)", prometheus.url("")}};
  const std::string one_host = "(" + regex_escape(host_name()) + ")";
  std::vector<std::string> problems;
  int rounds = 0;
  phase("shipping and scraping", 20s);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  do {
    ++rounds;
    EXPECT_EQ(http_get(vm_rw.url("/internal/force_flush")).status, 200);
    EXPECT_EQ(http_get(vm_influx.url("/internal/force_flush")).status, 200);
    const Window w{seen_from.start_s, now_s()};
    problems.clear();
    for (const auto& api : apis) {
      if (auto p = host_variable_problem(api, dashboard, w); !p.empty()) problems.push_back(p);
      for (const std::string& host : {one_host, std::string(".*")}) {
        for (auto& p : target_problems(api, dashboard, host, w)) problems.push_back(p);
      }
    }
    if (problems.empty()) break;
    std::this_thread::sleep_for(3s);
  } while (std::chrono::steady_clock::now() < deadline);

  std::printf("%zu targets x %zu servers x 2 host selections: %s after %d rounds, %llu s\n",
              targets_of(dashboard).size(), apis.size(),
              problems.empty() ? "all have data" : "some have none", rounds,
              static_cast<unsigned long long>(now_s() - seen_from.start_s));
  for (const auto& p : problems) ADD_FAILURE() << p;

  burner.signal(SIGKILL);
  burner.wait(10s);
  EXPECT_EQ(agent.stop(), 0) << agent.process().stderr_text();
}

}  // namespace tally::test::grafana_dashboard
