#include "sample.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tally::accounting {
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
  EXPECT_EQ(line,
            R"({"kind":"process","ts_ns":1700000000000000000,"interval_ns":1000000000,)"
            R"("host":"web-1","pid":42,"start_time_ns":1699999999000000000,"comm":"nginx",)"
            R"("cmdline":"nginx -g daemon off;","cgroup":"/system.slice/nginx.service",)"
            R"("cpu_ns":250000000,"cpu_pct":25.0,"rss_bytes":1048576,"exited":false})");
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

}  // namespace
}  // namespace tally::accounting
