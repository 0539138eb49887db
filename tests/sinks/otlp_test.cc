// tallyd ships with format = "otlp" to a loopback receiver standing in for
// an OpenTelemetry Collector. What it sent is decoded against the OTLP
// protobuf schema by the OpenTelemetry JS implementation (otlp-check/), and
// matched sample by sample against what tallyd committed; the OTLP/HTTP
// response rules (retryable codes, Retry-After, partial success, permanent
// errors) are exercised against the same receiver.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "otlp_receiver.h"
#include "sink_system.h"
#include "test_cgroup.h"

namespace tally::test {
namespace {

std::string host_name() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string machine_id() {
  std::ifstream in("/etc/machine-id");
  std::string id;
  std::getline(in, id);
  return id.size() == 32 ? id : std::string();
}

// npm ci into the build tree once (package-lock.json pins every version).
bool install_checker(std::string& error) {
  const std::filesystem::path dir = OTLP_CHECK_DIR;
  if (std::filesystem::exists(dir / "node_modules/@opentelemetry/otlp-transformer/package.json")) {
    return true;
  }
  const std::string npm = find_program("npm");
  if (npm.empty() || find_program("node").empty()) {
    error = "node and npm are needed (scripts/bootstrap installs them)";
    return false;
  }
  RunResult r = run({npm, "ci", "--prefix", dir.string(), "--ignore-scripts", "--no-audit",
                     "--no-fund", "--loglevel=error"},
                    std::chrono::minutes(3));
  if (r.exit_code != 0) error = "npm ci in " + dir.string() + ": " + r.out + r.err;
  return r.exit_code == 0;
}

// The OTLP data points tallyd sent: (pid, timeUnixNano) -> cpu seconds.
std::map<std::pair<std::string, std::string>, std::vector<double>> cpu_points(
    const std::vector<OtlpReceiver::Request>& requests) {
  std::map<std::pair<std::string, std::string>, std::vector<double>> out;
  for (const auto& r : requests) {
    const auto j = nlohmann::json::parse(r.body);
    for (const auto& rm : j["resourceMetrics"]) {
      std::string pid;
      for (const auto& a : rm["resource"]["attributes"]) {
        if (a["key"] == "process.pid") pid = a["value"]["intValue"];
      }
      if (pid.empty()) continue;
      for (const auto& m : rm["scopeMetrics"][0]["metrics"]) {
        if (m["name"] != "process.cpu.time") continue;
        const auto& p = m["sum"]["dataPoints"][0];
        out[{pid, p["timeUnixNano"].get<std::string>()}].push_back(p["asDouble"].get<double>());
      }
    }
  }
  return out;
}

TEST(OtlpSink, WhatTallydSendsDecodesAgainstTheOtlpSchemaAndCarriesEverySample) {
  TALLY_REQUIRE_BPF();
  std::string error;
  ASSERT_TRUE(install_checker(error)) << error;
  TempDir dir;
  OtlpReceiver plain, with_cmdline;
  SinkSystem sys(dir, plain.port());  // no proxy faults here: the receiver is the server
  const std::string config = write_sink_config(
      dir, {"name = \"otel\"\nformat = \"otlp\"\nurl = \"" + plain.url() + "\"\n",
            "name = \"otel-cmdline\"\nformat = \"otlp\"\ncmdline = true\nurl = \"" +
                with_cmdline.url() + "\"\n"});
  // A burner in a cgroup of its own, so that cgroup lines go out too (a
  // limit, so that they carry throttling).
  // (Without a cpu controller on this machine, no cgroup lines are checked.)
  TestCgroup cgroup(0.5);
  const bool with_cgroup = cgroup.skip_reason().empty();
  Subprocess burner({BURNER_PATH, "spin", "30"});
  if (with_cgroup) cgroup.add(burner.pid());
  sys.start_agent({"--config", config});
  phase("shipping", 2s);
  sys.burn_odd(200);
  phase("shipping", 2s);
  burner.signal(SIGKILL);
  burner.wait(10s);
  sys.flush_and_stop();

  ASSERT_FALSE(plain.requests().empty());
  for (const auto* receiver : {&plain, &with_cmdline}) {
    for (const auto& r : receiver->requests()) {
      EXPECT_EQ(r.path, "/v1/metrics");
      EXPECT_EQ(r.headers.at("content-type"), "application/json");
      EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
    }
  }

  // The schema check, by a real OTLP implementation.
  for (const auto& [receiver, cmdline] :
       {std::pair{&plain, "no"}, std::pair{&with_cmdline, "yes"}}) {
    std::vector<std::string> argv{find_program("node"), std::string(OTLP_CHECK_DIR) + "/check.js",
                                  "--host-name",        host_name(),
                                  "--cmdline",          cmdline};
    if (!machine_id().empty()) {
      argv.push_back("--host-id");
      argv.push_back(machine_id());
    }
    int n = 0;
    for (const auto& r : receiver->requests()) {
      const std::string file =
          dir / ("body-" + std::string(cmdline) + std::to_string(n++) + ".json");
      std::ofstream(file) << r.body;
      argv.push_back(file);
    }
    RunResult check = run(argv, std::chrono::minutes(1));
    std::printf("otlp-check (cmdline %s): %s", cmdline, check.out.c_str());
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    const auto summary = nlohmann::json::parse(check.out, nullptr, false);
    if (with_cgroup) {
      EXPECT_GT(summary.value("cgroup_resources", 0), 0) << "the burner's cgroup: " << check.out;
    }
    // The rollups: a remainder and groups beside every host resource.
    EXPECT_GT(summary.value("remainder_resources", 0), 0) << check.out;
    EXPECT_GT(summary.value("group_resources", 0), 0) << check.out;
  }

  // Every committed process sample is one cpu point with its value.
  auto points = cpu_points(plain.requests());
  std::size_t processes = 0, matched = 0;
  for (const auto& j : sys.committed()) {
    if (j["kind"] != "process") continue;
    ++processes;
    const auto& v = points[{std::to_string(j["pid"].get<std::uint64_t>()),
                            std::to_string(j["ts_ns"].get<std::uint64_t>())}];
    if (v.size() == 1 && v[0] == static_cast<double>(j["cpu_ns"].get<std::uint64_t>()) / 1e9) {
      ++matched;
    } else if (processes - matched <= 3) {
      ADD_FAILURE() << "sample " << j.dump() << " sent as " << v.size() << " points";
    }
  }
  std::size_t sent = 0;
  for (const auto& [key, v] : points) sent += v.size();
  std::printf("%zu process samples committed, %zu OTLP cpu points sent, %zu matched\n", processes,
              sent, matched);
  EXPECT_GT(processes, 0u);
  EXPECT_EQ(matched, processes);
  EXPECT_EQ(sent, processes);
}

TEST(OtlpSink, RetriesOnlyRetryableCodesHonoursRetryAfterAndAcceptsPartialSuccess) {
  TALLY_REQUIRE_BPF();
  TempDir dir;
  OtlpReceiver receiver;
  // In arrival order: two 503s with Retry-After: 2 (each batch retried, the
  // same bytes, no sooner than 2 s later), a partial success (acknowledged,
  // counted, not retried), a 400 (permanent: dead-lettered), then success.
  receiver.queue({503, R"({"code":14,"message":"unavailable"})", "Retry-After: 2\r\n"});
  receiver.queue({503, R"({"code":14,"message":"unavailable"})", "Retry-After: 2\r\n"});
  receiver.queue(
      {200, R"({"partialSuccess":{"rejectedDataPoints":"2","errorMessage":"bad point"}})", ""});
  receiver.queue({400, R"({"code":3,"message":"invalid"})", ""});
  SinkSystem sys(dir, receiver.port());
  const std::string config = write_sink_config(
      dir, {"name = \"otel\"\nformat = \"otlp\"\nurl = \"" + receiver.url() + "\"\n"});
  sys.start_agent({"--config", config});
  phase("shipping through the scripted answers", 6s);
  const auto s = sys.status();
  sys.flush_and_stop();

  const auto requests = receiver.requests();
  ASSERT_GE(requests.size(), 6u);
  // Every body, with the answers it got and when.
  std::map<std::string, std::vector<const OtlpReceiver::Request*>> sends;
  for (const auto& r : requests) sends[r.body].push_back(&r);
  int retried = 0;
  for (const auto& [body, attempts] : sends) {
    for (std::size_t i = 0; i < attempts.size(); ++i) {
      if (attempts[i]->answered == 503) {
        ++retried;
        ASSERT_LT(i + 1, attempts.size()) << "a 503 is retried";
        EXPECT_GE(attempts[i + 1]->at - attempts[i]->at, 1900ms) << "Retry-After: 2 honoured";
      } else {
        EXPECT_EQ(i + 1, attempts.size())
            << "after status " << attempts[i]->answered << " a batch is not sent again";
      }
    }
  }
  EXPECT_EQ(retried, 2);
  const auto& sink = s["sinks"][0];
  EXPECT_EQ(sink["partial_successes"], 1);
  EXPECT_EQ(sink["points_rejected"], 2);
  EXPECT_EQ(sink["batches_rejected"], 1);
  EXPECT_EQ(sink["requests_failed"], 2);
  EXPECT_EQ(s["outbox"]["dead_letters"], 1);
  EXPECT_EQ(s["health"]["status"], "degraded");
  EXPECT_NE(sys.agent_stderr().find("partial success: 2 data points rejected: bad point"),
            std::string::npos)
      << sys.agent_stderr();
}

}  // namespace
}  // namespace tally::test
