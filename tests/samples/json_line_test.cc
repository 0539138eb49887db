#include "samples/json_line.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tally::samples {
namespace {

TEST(SampleJson, ProcessLineHasExactlyTheDocumentedFieldsInOrder) {
  ProcessSample s;
  s.ts_ns = 1700000000000000000;
  s.interval_ns = 1000000000;
  s.host = "web-1";
  s.pid = 42;
  s.start_time_ns = 1699999999000000000;
  s.comm = "nginx";
  s.cmdline = "nginx -g daemon off;";
  s.cgroup = "/system.slice/nginx.service";
  s.cpu_ns = 250000000;
  s.cpu_pct = percent(s.cpu_ns, s.interval_ns);
  s.rss_bytes = 1 << 20;
  const std::string line = to_json_line(s);
  EXPECT_EQ(line, R"({"kind":"process","ts_ns":1700000000000000000,"interval_ns":1000000000,)"
                  R"("host":"web-1","pid":42,"start_time_ns":1699999999000000000,"comm":"nginx",)"
                  R"("cmdline":"nginx -g daemon off;","cgroup":"/system.slice/nginx.service",)"
                  R"("cpu_ns":250000000,"cpu_pct":25.0,"wait_ns":0,"wait_pct":0.0,)"
                  R"("rss_bytes":1048576,"exited":false})");
}

TEST(SampleJson, ContainerAndPodFieldsAreNamesWrittenOnlyWhenKnown) {
  ProcessSample s;
  s.ts_ns = 7;
  s.interval_ns = 100;
  s.host = "h";
  s.pid = 3;
  s.start_time_ns = 2;
  s.comm = "c";
  s.cmdline = "c";
  s.cgroup = "/k";
  s.container_id = "abc";
  s.container_runtime = "containerd";
  s.pod = "web-0";
  s.pod_namespace = "shop";
  s.cpu_ns = 10;
  s.cpu_pct = 10;
  s.wait_ns = 30;
  s.wait_pct = 30;
  EXPECT_EQ(to_json_line(s),
            R"({"kind":"process","ts_ns":7,"interval_ns":100,"host":"h","pid":3,"start_time_ns":2,)"
            R"("comm":"c","cmdline":"c","cgroup":"/k","container_id":"abc",)"
            R"("container_runtime":"containerd","pod":"web-0","namespace":"shop",)"
            R"("cpu_ns":10,"cpu_pct":10.0,"wait_ns":30,"wait_pct":30.0,"rss_bytes":0,)"
            R"("exited":false})");
  // Left out with the other names, and absent from the first release's form.
  EXPECT_EQ(to_json_line(s, Names::left_out),
            R"({"kind":"process","ts_ns":7,"interval_ns":100,"host":"h","pid":3,"start_time_ns":2,)"
            R"("cpu_ns":10,"cpu_pct":10.0,"wait_ns":30,"wait_pct":30.0,"rss_bytes":0,)"
            R"("exited":false})");
  EXPECT_EQ(to_json_line(s, Names::included, Form::first_release),
            R"({"kind":"process","ts_ns":7,"interval_ns":100,"host":"h","pid":3,"start_time_ns":2,)"
            R"("comm":"c","cmdline":"c","cgroup":"/k","cpu_ns":10,"cpu_pct":10.0,"rss_bytes":0,)"
            R"("exited":false})");
}

TEST(SampleJson, WithoutNamesLeavesOutExactlyCommCmdlineAndCgroup) {
  ProcessSample s;
  s.ts_ns = 7;
  s.interval_ns = 1;
  s.host = "h";
  s.pid = 3;
  s.start_time_ns = 2;
  s.comm = "c";
  s.cmdline = "c -x";
  s.cgroup = "/g";
  s.cpu_ns = 1;
  s.cpu_pct = 100;
  EXPECT_EQ(
      to_json_line(s, Names::left_out),
      R"({"kind":"process","ts_ns":7,"interval_ns":1,"host":"h","pid":3,"start_time_ns":2,)"
      R"("cpu_ns":1,"cpu_pct":100.0,"wait_ns":0,"wait_pct":0.0,"rss_bytes":0,"exited":false})");
}

TEST(SampleJson, AnUnknownSampleIsItsLineUnchanged) {
  const std::string future = R"({"kind":"numa_node","x":[1]})";
  EXPECT_EQ(to_json_line(Sample(UnknownSample{future})), future);
  EXPECT_EQ(to_json_line(Sample(HostSample{})), to_json_line(HostSample{}));
}

TEST(SampleJson, HostLineHasExactlyTheDocumentedFields) {
  HostSample h;
  h.ts_ns = 5;
  h.interval_ns = 10;
  h.host = "h";
  h.ncpu = 4;
  h.busy_ns = 20;
  h.cpu_pct = percent(20, 40);
  h.processes = 3;
  h.dropped_updates = 1;
  h.steal_ns = 2;
  h.psi_some_ns = 3;
  h.psi_full_ns = 1;
  h.unaccounted_ns = -4;
  h.bpf_run_ns = 6;
  EXPECT_EQ(to_json_line(h),
            R"({"kind":"host","ts_ns":5,"interval_ns":10,"host":"h","ncpu":4,"busy_ns":20,)"
            R"("cpu_pct":50.0,"processes":3,"dropped_updates":1,"steal_ns":2,"psi_some_ns":3,)"
            R"("psi_full_ns":1,"unaccounted_ns":-4,"bpf_run_ns":6})");
  EXPECT_EQ(to_json_line(h, Form::first_release),
            R"({"kind":"host","ts_ns":5,"interval_ns":10,"host":"h","ncpu":4,"busy_ns":20,)"
            R"("cpu_pct":50.0,"processes":3,"dropped_updates":1})");
}

TEST(SampleJson, EscapesQuotesAndControlCharactersAndReplacesInvalidUtf8) {
  ProcessSample s;
  s.cmdline = std::string("sh -c \"echo\thi\"\n\xff\xfe", 18);
  auto j = nlohmann::json::parse(to_json_line(s));
  EXPECT_EQ(j["cmdline"].get<std::string>(), "sh -c \"echo\thi\"\n\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(SampleJson, PercentAbove100ForMultithreadedProcesses) {
  EXPECT_DOUBLE_EQ(percent(3'000'000'000, 1'000'000'000), 300.0);
  EXPECT_DOUBLE_EQ(percent(1, 0), 0.0);
  EXPECT_DOUBLE_EQ(percent(1234, 10000), 12.34);
}

// What to_json_line wrote before it was written by hand: one nlohmann
// object, dumped. The hand-written line must match it byte for byte.
std::string reference_line(const ProcessSample& s) {
  nlohmann::ordered_json j;
  j["kind"] = "process";
  j["ts_ns"] = s.ts_ns;
  j["interval_ns"] = s.interval_ns;
  j["host"] = s.host;
  j["pid"] = s.pid;
  j["start_time_ns"] = s.start_time_ns;
  j["comm"] = s.comm;
  j["cmdline"] = s.cmdline;
  j["cgroup"] = s.cgroup;
  if (!s.container_id.empty()) j["container_id"] = s.container_id;
  if (!s.pod.empty()) j["pod"] = s.pod;
  j["cpu_ns"] = s.cpu_ns;
  j["cpu_pct"] = s.cpu_pct;
  j["wait_ns"] = s.wait_ns;
  j["wait_pct"] = s.wait_pct;
  j["rss_bytes"] = s.rss_bytes;
  j["exited"] = s.exited;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string reference_line(const HostSample& s) {
  nlohmann::ordered_json j;
  j["kind"] = "host";
  j["ts_ns"] = s.ts_ns;
  j["interval_ns"] = s.interval_ns;
  j["host"] = s.host;
  j["ncpu"] = s.ncpu;
  j["busy_ns"] = s.busy_ns;
  j["cpu_pct"] = s.cpu_pct;
  j["processes"] = s.processes;
  j["dropped_updates"] = s.dropped_updates;
  j["steal_ns"] = s.steal_ns;
  j["psi_some_ns"] = s.psi_some_ns;
  j["psi_full_ns"] = s.psi_full_ns;
  j["unaccounted_ns"] = s.unaccounted_ns;
  j["bpf_run_ns"] = s.bpf_run_ns;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Strings mostly of printable ASCII, with now and then a quote, a backslash,
// a control character, DEL, valid UTF-8 and bytes that are not UTF-8.
std::string random_text(std::mt19937_64& rng) {
  static const std::string specials[] = {
      "\"",   "\\",   "\n",       "\t",           std::string(1, '\0'),
      "\x1f", "\x7f", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
      "\xff", "\xc3", "\xe2\x82"};
  std::string s;
  const std::size_t n = rng() % 40;
  for (std::size_t i = 0; i < n; ++i) {
    if (rng() % 12 == 0) {
      s += specials[rng() % std::size(specials)];
    } else {
      s += static_cast<char>(' ' + rng() % 95);
    }
  }
  return s;
}

std::uint64_t random_number(std::mt19937_64& rng) {
  switch (rng() % 4) {
    case 0:
      return rng() % 10;
    case 1:
      return rng() % 100'000;
    case 2:
      return std::numeric_limits<std::uint64_t>::max() - rng() % 3;
    default:
      return rng();
  }
}

double random_percent(std::mt19937_64& rng) {
  static const double edges[] = {0.0,
                                 -0.0,
                                 0.01,
                                 0.1,
                                 1.0,
                                 99.99,
                                 100.0,
                                 6400.0,
                                 1e-5,
                                 1e15,
                                 1e300,
                                 -1.5,
                                 std::numeric_limits<double>::infinity(),
                                 std::numeric_limits<double>::quiet_NaN()};
  if (rng() % 5 == 0) return edges[rng() % std::size(edges)];
  return percent(rng() % 100'000'000'000ULL, 1 + rng() % 70'000'000'000ULL);
}

TEST(SampleJson, LinesAreByteForByteWhatNlohmannWritesForTheWholeObject) {
  std::mt19937_64 rng(20261128);
  for (int i = 0; i < 20'000; ++i) {
    ProcessSample s;
    s.ts_ns = random_number(rng);
    s.interval_ns = random_number(rng);
    s.host = random_text(rng);
    s.pid = static_cast<std::uint32_t>(random_number(rng));
    s.start_time_ns = random_number(rng);
    s.comm = random_text(rng);
    s.cmdline = random_text(rng);
    s.cgroup = random_text(rng);
    s.cpu_ns = random_number(rng);
    if (rng() % 3 == 0) s.container_id = random_text(rng);
    if (rng() % 3 == 0) s.pod = random_text(rng);
    s.cpu_pct = random_percent(rng);
    s.wait_ns = random_number(rng);
    s.wait_pct = random_percent(rng);
    s.rss_bytes = random_number(rng);
    s.exited = rng() % 2 == 0;
    ASSERT_EQ(to_json_line(s), reference_line(s)) << "process sample " << i;

    HostSample h;
    h.ts_ns = random_number(rng);
    h.interval_ns = random_number(rng);
    h.host = random_text(rng);
    h.ncpu = static_cast<std::uint32_t>(random_number(rng));
    h.busy_ns = random_number(rng);
    h.cpu_pct = random_percent(rng);
    h.processes = static_cast<std::uint32_t>(random_number(rng));
    h.dropped_updates = random_number(rng);
    h.steal_ns = random_number(rng);
    h.psi_some_ns = random_number(rng);
    h.psi_full_ns = random_number(rng);
    h.unaccounted_ns = static_cast<std::int64_t>(random_number(rng));
    h.bpf_run_ns = random_number(rng);
    ASSERT_EQ(to_json_line(h), reference_line(h)) << "host sample " << i;
  }
}

}  // namespace
}  // namespace tally::samples
