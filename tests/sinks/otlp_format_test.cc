// The otlp format: the OTLP/JSON shape and the semantic-convention mapping
// of docs/sinks.md, and the OTLP/HTTP response rules. (tests/sinks/otlp-check
// validates real output against the protobuf schema.)
#include "shipping/otlp_format.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include "sample_lines.h"

#include "sink_test_lines.h"

namespace tally::shipping {
namespace {

using nlohmann::json;
using test::batch_of;
using test::ProcessLine;

json encode(const OtlpFormat& f, const std::vector<std::string>& in) {
  const auto b = batch_of(1, in);
  auto lines = test::samples_of(b.payload);
  auto body = f.encode(b, lines, 0, static_cast<std::uint32_t>(lines.size()));
  EXPECT_TRUE(body.ok()) << body.error().message();
  return json::parse(*body);
}

json attribute(const json& resource, const std::string& key) {
  for (const auto& a : resource["attributes"]) {
    if (a["key"] == key) return a["value"];
  }
  return nullptr;
}

OtlpOptions options() {
  OtlpOptions o;
  o.host_id = "0123456789abcdef0123456789abcdef";
  o.scope_version = "0.1.0";
  return o;
}

TEST(OtlpFormat, MakesEachProcessAResourceWithSemanticConventionAttributes) {
  const json j = encode(OtlpFormat(options()), {ProcessLine{}.json()});
  ASSERT_EQ(j["resourceMetrics"].size(), 1u);
  const json& rm = j["resourceMetrics"][0];
  EXPECT_EQ(attribute(rm["resource"], "host.name"), json({{"stringValue", "web-1"}}));
  EXPECT_EQ(attribute(rm["resource"], "host.id"),
            json({{"stringValue", "0123456789abcdef0123456789abcdef"}}));
  EXPECT_EQ(attribute(rm["resource"], "process.pid"), json({{"intValue", "812"}}));
  EXPECT_EQ(attribute(rm["resource"], "process.executable.name"), json({{"stringValue", "nginx"}}));
  EXPECT_EQ(attribute(rm["resource"], "process.linux.cgroup"),
            json({{"stringValue", "/system.slice/nginx.service"}}));
  EXPECT_TRUE(attribute(rm["resource"], "process.command_line").is_null())
      << "not collected unless enabled";
  EXPECT_EQ(rm["scopeMetrics"][0]["scope"], json({{"name", "tally"}, {"version", "0.1.0"}}));
}

TEST(OtlpFormat, CpuTimeIsAMonotonicDeltaSumInSecondsWithStringTimestamps) {
  const json j = encode(OtlpFormat(options()), {ProcessLine{}.json()});
  const json& m = j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
  EXPECT_EQ(m["name"], "process.cpu.time");
  EXPECT_EQ(m["unit"], "s");
  EXPECT_EQ(m["sum"]["aggregationTemporality"], 1) << "enums are integers: DELTA";
  EXPECT_EQ(m["sum"]["isMonotonic"], true);
  const json& p = m["sum"]["dataPoints"][0];
  EXPECT_EQ(p["timeUnixNano"], "1700000060000000000") << "int64 as a decimal string";
  EXPECT_EQ(p["startTimeUnixNano"], "1700000000000000000");
  EXPECT_DOUBLE_EQ(p["asDouble"].get<double>(), 0.25);
}

TEST(OtlpFormat, ADeltaDoesNotStartBeforeTheProcessDid) {
  ProcessLine p;
  p.start_time_ns = p.ts_ns - 1000;
  const json j = encode(OtlpFormat(options()), {p.json()});
  const json& m = j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0];
  EXPECT_EQ(m["sum"]["dataPoints"][0]["startTimeUnixNano"], "1700000059999999000");
}

TEST(OtlpFormat, MemoryUsageIsANonMonotonicCumulativeSumInBytes) {
  const json j = encode(OtlpFormat(options()), {ProcessLine{}.json()});
  const json& m = j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][1];
  EXPECT_EQ(m["name"], "process.memory.usage");
  EXPECT_EQ(m["unit"], "By");
  EXPECT_EQ(m["sum"]["aggregationTemporality"], 2);
  EXPECT_EQ(m["sum"]["isMonotonic"], false);
  EXPECT_EQ(m["sum"]["dataPoints"][0]["asInt"], "10485760");
  EXPECT_EQ(m["sum"]["dataPoints"][0]["startTimeUnixNano"], "1699990000000000000");
}

TEST(OtlpFormat, AnExitedProcessReportsCpuButNoMemory) {
  ProcessLine p;
  p.exited = true;
  p.rss_bytes = 0;
  const json j = encode(OtlpFormat(options()), {p.json()});
  const json& metrics = j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[0]["name"], "process.cpu.time");
  EXPECT_EQ(metrics[1]["name"], "tally.process.cpu.wait_time");
}

TEST(OtlpFormat, RunQueueWaitIsADeltaSumInSeconds) {
  const json j = encode(OtlpFormat(options()), {ProcessLine{}.json()});
  const json& m = j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][2];
  EXPECT_EQ(m["name"], "tally.process.cpu.wait_time");
  EXPECT_EQ(m["sum"]["aggregationTemporality"], 1);
  EXPECT_DOUBLE_EQ(m["sum"]["dataPoints"][0]["asDouble"].get<double>(), 0.12);
}

TEST(OtlpFormat, APodsProcessCarriesTheContainerAndK8sResourceAttributes) {
  ProcessLine p;
  p.container_id = std::string(64, 'a');
  p.pod = "web-0";
  p.pod_namespace = "shop";
  p.container = "nginx";
  const json j = encode(OtlpFormat(options()), {p.json()});
  const json& resource = j["resourceMetrics"][0]["resource"];
  EXPECT_EQ(attribute(resource, "container.id"), json({{"stringValue", std::string(64, 'a')}}));
  EXPECT_EQ(attribute(resource, "container.runtime"), json({{"stringValue", "containerd"}}));
  EXPECT_EQ(attribute(resource, "k8s.pod.name"), json({{"stringValue", "web-0"}}));
  EXPECT_EQ(attribute(resource, "k8s.namespace.name"), json({{"stringValue", "shop"}}));
  EXPECT_EQ(attribute(resource, "k8s.container.name"), json({{"stringValue", "nginx"}}));
  // Outside a pod none of them is sent empty.
  const json plain = encode(OtlpFormat(options()), {ProcessLine{}.json()});
  EXPECT_TRUE(attribute(plain["resourceMetrics"][0]["resource"], "k8s.pod.name").is_null());
}

TEST(OtlpFormat, SendsTheCommandLineWhenEnabled) {
  OtlpOptions o = options();
  o.cmdline = true;
  ProcessLine p;
  p.cmdline = "a \"b\"\nc\\d";
  const json j = encode(OtlpFormat(o), {p.json()});
  EXPECT_EQ(attribute(j["resourceMetrics"][0]["resource"], "process.command_line"),
            json({{"stringValue", "a \"b\"\nc\\d"}}));
}

TEST(OtlpFormat, TheHostSampleIsAHostResource) {
  OtlpOptions o = options();
  o.host_id.clear();
  const json j = encode(OtlpFormat(o), {test::host_line()});
  const json& rm = j["resourceMetrics"][0];
  EXPECT_TRUE(attribute(rm["resource"], "host.id").is_null()) << "no machine id, no host.id";
  EXPECT_TRUE(attribute(rm["resource"], "process.pid").is_null());
  std::vector<std::string> names;
  for (const auto& m : rm["scopeMetrics"][0]["metrics"]) names.push_back(m["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "system.cpu.logical.count", "tally.host.cpu.busy_time",
                       "tally.host.processes", "tally.dropped_updates", "tally.host.cpu.steal_time",
                       "tally.host.cpu.pressure.some", "tally.host.cpu.pressure.full",
                       "tally.host.cpu.unaccounted_time", "tally.bpf.run_time"}));
  EXPECT_DOUBLE_EQ(
      rm["scopeMetrics"][0]["metrics"][7]["gauge"]["dataPoints"][0]["asDouble"].get<double>(),
      -2e-6);
  EXPECT_EQ(rm["scopeMetrics"][0]["metrics"][1]["sum"]["dataPoints"][0]["asDouble"], 12.0);
  EXPECT_EQ(rm["scopeMetrics"][0]["metrics"][2]["gauge"]["dataPoints"][0]["asInt"], "12");
}

TEST(OtlpFormat, TopSendsTheBusiestThenARemainderResourceAndAResourcePerGroup) {
  ProcessLine busy, idle;
  busy.pid = 1;
  busy.cpu_ns = 3'000'000'000;
  idle.pid = 2;
  idle.cpu_ns = 500'000'000;
  idle.comm = "sh";
  std::string host = test::host_line();
  host.replace(host.find("\"processes\":12"), 14, "\"processes\":2");
  OtlpOptions o = options();
  o.rollup.top = true;
  o.rollup.top_n = 1;
  const json j = encode(OtlpFormat(o), {busy.json(), idle.json(), host});
  std::vector<json> processes, remainders, groups;
  for (const auto& rm : j["resourceMetrics"]) {
    if (!attribute(rm["resource"], "process.pid").is_null()) processes.push_back(rm);
    if (!attribute(rm["resource"], "tally.remainder").is_null()) remainders.push_back(rm);
    if (!attribute(rm["resource"], "tally.group.by").is_null()) groups.push_back(rm);
  }
  ASSERT_EQ(processes.size(), 1u);
  EXPECT_EQ(attribute(processes[0]["resource"], "process.pid"), json({{"intValue", "1"}}));
  ASSERT_EQ(remainders.size(), 1u);
  EXPECT_EQ(attribute(remainders[0]["resource"], "tally.remainder"), json({{"boolValue", true}}));
  const json& other = remainders[0]["scopeMetrics"][0]["metrics"];
  EXPECT_EQ(other[0]["name"], "tally.other.cpu.time");
  EXPECT_EQ(other[0]["sum"]["dataPoints"][0]["asDouble"], 0.5);
  EXPECT_EQ(other[0]["sum"]["aggregationTemporality"], 1);  // delta
  EXPECT_EQ(other[2]["gauge"]["dataPoints"][0]["asInt"], "1");
  // One cgroup, two comms.
  ASSERT_EQ(groups.size(), 3u);
  double comm_total = 0, comm_other = 0;
  for (const auto& g : groups) {
    if (attribute(g["resource"], "tally.group.by") != json({{"stringValue", "comm"}})) continue;
    const json& metrics = g["scopeMetrics"][0]["metrics"];
    comm_total += metrics[0]["sum"]["dataPoints"][0]["asDouble"].get<double>();
    comm_other += metrics[2]["sum"]["dataPoints"][0]["asDouble"].get<double>();
  }
  EXPECT_DOUBLE_EQ(comm_total, 3.5);
  EXPECT_DOUBLE_EQ(comm_other, 0.5);
}

TEST(OtlpFormat, ACgroupLineIsAContainerResourceWithItsCgroupMetrics) {
  const json j = encode(OtlpFormat(options()), {test::cgroup_line()});
  const json& rm = j["resourceMetrics"][0];
  EXPECT_EQ(attribute(rm["resource"], "tally.cgroup.path"),
            json({{"stringValue", "/kubepods/burstable/pod1/abc"}}));
  EXPECT_EQ(attribute(rm["resource"], "container.id"), json({{"stringValue", "abc"}}));
  EXPECT_EQ(attribute(rm["resource"], "k8s.pod.name"), json({{"stringValue", "web-0"}}));
  EXPECT_EQ(attribute(rm["resource"], "k8s.namespace.name"), json({{"stringValue", "shop"}}));
  EXPECT_EQ(attribute(rm["resource"], "k8s.container.name"), json({{"stringValue", "nginx"}}));
  std::vector<std::string> names;
  for (const auto& m : rm["scopeMetrics"][0]["metrics"]) names.push_back(m["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "tally.cgroup.cpu.time", "tally.cgroup.cpu.throttled_time",
                       "tally.cgroup.cpu.periods", "tally.cgroup.cpu.throttled_periods",
                       "tally.cgroup.cpu.pressure.some", "tally.cgroup.cpu.pressure.full",
                       "tally.cgroup.cpu.limit"}));
  const json& metrics = rm["scopeMetrics"][0]["metrics"];
  EXPECT_EQ(metrics[0]["sum"]["dataPoints"][0]["asDouble"], 3.0);
  EXPECT_EQ(metrics[1]["sum"]["dataPoints"][0]["asDouble"], 2.5);
  EXPECT_EQ(metrics[3]["sum"]["dataPoints"][0]["asInt"], "45");
  EXPECT_EQ(metrics[6]["gauge"]["dataPoints"][0]["asDouble"], 0.5);
  // Without the figures, no metric: an unknown is not a zero.
  const json bare = encode(OtlpFormat(options()), {test::cgroup_line(true)});
  EXPECT_EQ(bare["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].size(), 2u);
}

TEST(OtlpFormat, EncodingIsDeterministicAndPiecesSelectTheirLines) {
  OtlpFormat f(options());
  ProcessLine a, b;
  b.pid = 9;
  const auto batch = batch_of(2, {a.json(), b.json()});
  auto lines = test::samples_of(batch.payload);
  EXPECT_EQ(*f.encode(batch, lines, 0, 2), *f.encode(batch, lines, 0, 2));
  const json second = json::parse(*f.encode(batch, lines, 1, 1));
  ASSERT_EQ(second["resourceMetrics"].size(), 1u);
  EXPECT_EQ(attribute(second["resourceMetrics"][0]["resource"], "process.pid"),
            json({{"intValue", "9"}}));
  EXPECT_FALSE(f.sends_gaps());
}

TEST(OtlpFormat, RetriesOnlyTheStatusesTheSpecificationNames) {
  OtlpFormat f(options());
  EXPECT_EQ(f.classify(200), Outcome::ack);
  for (long s : {429L, 502L, 503L, 504L, 401L, 403L}) EXPECT_EQ(f.classify(s), Outcome::retry) << s;
  for (long s : {400L, 404L, 500L, 501L}) EXPECT_EQ(f.classify(s), Outcome::reject) << s;
  EXPECT_EQ(f.classify(413), Outcome::split);
}

TEST(OtlpFormat, APartialSuccessIsAcknowledgedWithAWarning) {
  OtlpFormat f(options());
  HttpResponse r;
  r.status = 200;
  r.body = R"({"partialSuccess":{"rejectedDataPoints":"3","errorMessage":"bad unit"}})";
  Verdict v = f.judge(r);
  EXPECT_EQ(v.outcome, Outcome::ack);
  EXPECT_EQ(v.rejected_points, 3u);
  EXPECT_EQ(v.warning, "partial success: 3 data points rejected: bad unit");

  r.body = R"({"partialSuccess":{}})";
  EXPECT_TRUE(f.judge(r).warning.empty()) << "an empty partialSuccess is a full success";
  r.body = "";
  EXPECT_TRUE(f.judge(r).warning.empty());
  r.status = 503;
  r.body = R"({"partialSuccess":{"rejectedDataPoints":"3"}})";
  EXPECT_EQ(f.judge(r).outcome, Outcome::retry);
}

}  // namespace
}  // namespace tally::shipping
