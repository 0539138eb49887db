// Reading committed lines back: every field, any key order, and a precise
// message for what tallyd would never write.
#include "samples/json_line_reader.h"
#include "samples/json_line.h"

#include <gtest/gtest.h>

#include "sink_test_lines.h"

namespace tally::samples {
namespace {

TEST(JsonLineReader, ReadsEveryFieldOfAProcessLine) {
  test::ProcessLine p;
  p.exited = true;
  auto parsed = parse_json_line(p.json());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  const auto* r = std::get_if<ProcessSample>(&*parsed);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->ts_ns, p.ts_ns);
  EXPECT_EQ(r->interval_ns, p.interval_ns);
  EXPECT_EQ(r->host, "web-1");
  EXPECT_EQ(r->pid, 812u);
  EXPECT_EQ(r->start_time_ns, p.start_time_ns);
  EXPECT_EQ(r->comm, "nginx");
  EXPECT_EQ(r->cmdline, "nginx: worker process");
  EXPECT_EQ(r->cgroup, "/system.slice/nginx.service");
  EXPECT_EQ(r->cpu_ns, 250000000u);
  EXPECT_DOUBLE_EQ(r->cpu_pct, 0.42);
  EXPECT_EQ(r->rss_bytes, 10485760u);
  EXPECT_TRUE(r->exited);
}

TEST(JsonLineReader, ReadsAHostLineInAnyKeyOrder) {
  auto parsed = parse_json_line(R"({"dropped_updates":3,"processes":12,"cpu_pct":5,"busy_ns":7,)"
                                R"("ncpu":4,"host":"h","interval_ns":2,"ts_ns":1,"kind":"host"})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  const auto* r = std::get_if<HostSample>(&*parsed);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->ts_ns, 1u);
  EXPECT_EQ(r->interval_ns, 2u);
  EXPECT_EQ(r->host, "h");
  EXPECT_EQ(r->ncpu, 4u);
  EXPECT_EQ(r->busy_ns, 7u);
  EXPECT_DOUBLE_EQ(r->cpu_pct, 5.0);
  EXPECT_EQ(r->processes, 12u);
  EXPECT_EQ(r->dropped_updates, 3u);
}

TEST(JsonLineReader, SkipsUnknownKeysAndKeepsUnknownKindsAsTheirLine) {
  const std::string future = R"({"kind":"numa_node","ts_ns":1,"extra":{"a":[1,2]}})";
  auto r = parse_json_line(future);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(std::holds_alternative<UnknownSample>(*r));
  EXPECT_EQ(std::get<UnknownSample>(*r).json_line, future);
  test::ProcessLine p;
  std::string line = p.json();
  line.insert(1, R"("future":[{"x":null}],)");
  EXPECT_TRUE(parse_json_line(line).ok());
}

TEST(JsonLineReader, NamesTheFieldThatIsWrongOrMissing) {
  const std::pair<const char*, const char*> cases[] = {
      {"[1]", "not a JSON object"},
      {"{\"kind\":", "not a JSON object"},
      {R"({"ts_ns":1})", "kind: missing"},
      {R"({"kind":"host","ts_ns":-1})", "ts_ns: expected an unsigned integer"},
      {R"({"kind":"host","ts_ns":1.5})", "ts_ns: expected an unsigned integer"},
      {R"({"kind":"host","host":7})", "host: expected a string"},
      {R"({"kind":"process","exited":"no"})", "exited: expected true or false"},
      {R"({"kind":"host","cpu_pct":"1"})", "cpu_pct: expected a number"},
      {R"({"kind":"host","ts_ns":1,"interval_ns":1,"host":"h"})", "cpu_pct: missing"},
  };
  for (const auto& [line, message] : cases) {
    auto r = parse_json_line(line);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.error().message(), message) << line;
  }
}

TEST(JsonLineReader, ACgroupLineNeedsItsFieldsAndKeepsWhatItsHostDidNotOffer) {
  auto partial = parse_json_line(R"({"kind":"cgroup","ts_ns":1,"interval_ns":2,"host":"h"})");
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.error().message(), "cgroup: missing");
  auto typed = parse_json_line(
      R"({"kind":"cgroup","ts_ns":1,"interval_ns":2,"host":"h","cgroup":"/a","processes":1,)"
      R"("process_cpu_ns":5,"nr_periods":"3","limit_cpus":0.0})");
  ASSERT_FALSE(typed.ok());
  EXPECT_EQ(typed.error().message(), "nr_periods: expected an unsigned integer");
  // Without throttling or pressure (a host without a cpu controller or PSI).
  const std::string line =
      R"({"kind":"cgroup","ts_ns":1,"interval_ns":2,"host":"h","cgroup":"/a","processes":1,)"
      R"("process_cpu_ns":5,"cpu_ns":6,"cpu_pct":300.0,"limit_cpus":0.0})";
  auto r = parse_json_line(line);
  ASSERT_TRUE(r.ok()) << r.error().message();
  const auto* c = std::get_if<CgroupSample>(&*r);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->usage_known);
  EXPECT_FALSE(c->throttling_known);
  EXPECT_FALSE(c->pressure_known);
  EXPECT_EQ(c->cpu_ns, 6u);
  EXPECT_EQ(to_json_line(*r), line);
}

}  // namespace
}  // namespace tally::samples
