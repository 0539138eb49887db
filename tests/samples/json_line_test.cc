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
                  R"("cpu_ns":250000000,"cpu_pct":25.0,"rss_bytes":1048576,"exited":false})");
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
  EXPECT_EQ(to_json_line(s, Names::left_out),
            R"({"kind":"process","ts_ns":7,"interval_ns":1,"host":"h","pid":3,"start_time_ns":2,)"
            R"("cpu_ns":1,"cpu_pct":100.0,"rss_bytes":0,"exited":false})");
}

TEST(SampleJson, AnUnknownSampleIsItsLineUnchanged) {
  const std::string future = R"({"kind":"cgroup","x":[1]})";
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
  EXPECT_EQ(to_json_line(h),
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
  j["cpu_ns"] = s.cpu_ns;
  j["cpu_pct"] = s.cpu_pct;
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
    s.cpu_pct = random_percent(rng);
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
    ASSERT_EQ(to_json_line(h), reference_line(h)) << "host sample " << i;
  }
}

}  // namespace
}  // namespace tally::samples
