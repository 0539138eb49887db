// The influx format: line protocol escaping, the data model of
// docs/sinks.md, determinism, and response classification.
#include "shipping/influx_format.h"

#include <gtest/gtest.h>

#include "sample_lines.h"

#include "shipping/line_protocol.h"
#include "sink_test_lines.h"

namespace tally::shipping {
namespace {

using test::batch_of;
using test::ProcessLine;

std::string encode_all(const InfluxFormat& f, const queue::Batch& b) {
  auto lines = test::samples_of(b.payload);
  auto body = f.encode(b, lines, 0, static_cast<std::uint32_t>(lines.size()));
  EXPECT_TRUE(body.ok()) << body.error().message();
  return body.ok() ? *body : std::string();
}

TEST(InfluxLineProtocol, EscapesCommasSpacesAndEqualsInKeys) {
  std::string out;
  line_protocol::append_key(out, R"(a,b c=d\e)");
  EXPECT_EQ(out, R"(a\,b\ c\=d\e)") << "a backslash before a plain character stays single";
}

TEST(InfluxLineProtocol, DoublesABackslashOnlyWhereItWouldEscapeWhatFollows) {
  std::string out;
  line_protocol::append_key(out, R"(a\,b\ c\)");
  EXPECT_EQ(out, R"(a\\\,b\\\ c\\)");
}

TEST(InfluxLineProtocol, EscapesOnlyCommasAndSpacesInMeasurements) {
  std::string out;
  line_protocol::append_measurement(out, "m,1 =2");
  EXPECT_EQ(out, R"(m\,1\ =2)");
}

TEST(InfluxLineProtocol, QuotesStringFieldsEscapingQuotesAndBackslashes) {
  std::string out;
  line_protocol::append_string_field(out, R"(say "hi" C:\tmp, a=b)");
  EXPECT_EQ(out, R"("say \"hi\" C:\\tmp, a=b")");
}

TEST(InfluxLineProtocol, TurnsNewlinesAndOtherControlsIntoVisibleEscapes) {
  std::string out;
  line_protocol::append_string_field(out, "sh -c 'a\nb'\r\t\x01\x7f");
  EXPECT_EQ(out, R"("sh -c 'a\\nb'\\r\\t\\x01\\x7f")");
  EXPECT_EQ(out.find('\n'), std::string::npos);
  out.clear();
  line_protocol::append_key(out, "a\nb");
  EXPECT_EQ(out, R"(a\nb)");
}

TEST(InfluxLineProtocol, ReplacesInvalidUtf8WithTheReplacementCharacter) {
  std::string out;
  line_protocol::append_key(out, "caf\xC3\xA9 \xFF\xC0\xAFok");
  EXPECT_EQ(out, "caf\xC3\xA9\\ \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDok");
}

TEST(InfluxFormat, WritesOneProcessPointWithItsTagsAndTypedFields) {
  InfluxFormat f({});
  const auto body = encode_all(f, batch_of(1, {ProcessLine{}.json()}));
  EXPECT_EQ(body,
            "tally_process,cgroup=/system.slice/nginx.service,comm=nginx,host=web-1,pid=812 "
            "cpu_ns=250000000i,cpu_pct=0.42,wait_ns=120000000i,wait_pct=0.2,rss_bytes=10485760i,"
            "start_time_ns=1699990000000000000i,interval_ns=60000000000i,exited=false "
            "1700000060000000000\n");
}

// Container and pod names are tags, in lexical order among the others; the
// container id is not (every restart would be a new series).
TEST(InfluxFormat, TagsAPodsProcessWithItsPodNamespaceAndContainer) {
  ProcessLine p;
  p.container_id = std::string(64, 'a');
  p.pod = "web-0";
  p.pod_namespace = "shop";
  p.container = "nginx";
  const auto body = encode_all(InfluxFormat({}), batch_of(1, {p.json()}));
  EXPECT_EQ(body.rfind("tally_process,cgroup=/system.slice/nginx.service,comm=nginx,"
                       "container=nginx,host=web-1,namespace=shop,pid=812,pod=web-0 ",
                       0),
            0u)
      << body;
  EXPECT_EQ(body.find("aaaaaaaa"), std::string::npos);
}

TEST(InfluxFormat, WritesTheHostPoint) {
  InfluxFormat f({});
  EXPECT_EQ(encode_all(f, batch_of(1, {test::host_line()})),
            "tally_host,host=web-1 busy_ns=12000000000i,cpu_pct=5,ncpu=4i,processes=12i,"
            "dropped_updates=3i,steal_ns=5000000i,psi_some_ns=7000000i,psi_full_ns=0i,"
            "unaccounted_ns=-2000i,bpf_run_ns=0i,interval_ns=60000000000i 1700000060000000000\n");
}

TEST(InfluxFormat, WritesACgroupPointWithTheFiguresItsHostOffers) {
  InfluxFormat f({});
  EXPECT_EQ(encode_all(f, batch_of(1, {test::cgroup_line()})),
            "tally_cgroup,cgroup=/kubepods/burstable/pod1/abc,container=nginx,host=web-1,"
            "namespace=shop,pod=web-0 processes=2i,process_cpu_ns=2990000000i,limit_cpus=0.5,"
            "cpu_ns=3000000000i,cpu_pct=5,nr_periods=600i,nr_throttled=45i,"
            "throttled_ns=2500000000i,psi_some_ns=4000000000i,psi_full_ns=1000000000i,"
            "interval_ns=60000000000i 1700000060000000000\n");
  const std::string bare = encode_all(f, batch_of(1, {test::cgroup_line(true)}));
  EXPECT_EQ(bare.find("throttled"), std::string::npos) << "unknown is not 0: " << bare;
  EXPECT_EQ(bare.find("psi_"), std::string::npos) << bare;
}

TEST(InfluxFormat, SendsTheCommandLineOnlyWhenAskedEscaped) {
  ProcessLine p;
  p.cmdline = "python3 -c \"print(1)\"\nx=1, y";
  p.comm = "my proc,x=1";
  p.cgroup = "";
  EXPECT_EQ(encode_all(InfluxFormat({}), batch_of(1, {p.json()})).find("cmdline"),
            std::string::npos);
  InfluxOptions o;
  o.cmdline = true;
  const auto body = encode_all(InfluxFormat(o), batch_of(1, {p.json()}));
  EXPECT_NE(body.find(R"(,cmdline="python3 -c \"print(1)\"\\nx=1, y" )"), std::string::npos)
      << body;
  EXPECT_EQ(body.rfind("tally_process,comm=my\\ proc\\,x\\=1,host=web-1,pid=812 ", 0), 0u) << body;
  EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 1);
}

TEST(InfluxFormat, AddsStartTimeTagOnlyWhereAPidRepeatsWithinOneInterval) {
  ProcessLine a, b, c;
  a.exited = true;
  b.start_time_ns = a.start_time_ns + 5;  // pid 812 reused in the same interval
  c.pid = 900;
  ProcessLine later = b;
  later.ts_ns += 60000000000ULL;
  const auto body =
      encode_all(InfluxFormat({}), batch_of(1, {a.json(), b.json(), c.json(), later.json()}));
  auto lines = split_lines(body);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[0].find(",pid=812,start_time=1699990000000000000 "), std::string::npos);
  EXPECT_NE(lines[1].find(",pid=812,start_time=1699990000000000005 "), std::string::npos);
  EXPECT_EQ(lines[2].find("start_time="), std::string::npos);
  EXPECT_EQ(lines[3].find("start_time="), std::string::npos);
}

TEST(InfluxFormat, APieceOfASplitBatchIsTheSamePointsAsInTheWholeBatch) {
  ProcessLine a, b;
  b.start_time_ns += 1;  // a repeated pid, whose samples land in different pieces
  const auto batch = batch_of(3, {a.json(), test::host_line(), b.json()});
  InfluxFormat f({});
  auto lines = test::samples_of(batch.payload);
  const std::string whole = *f.encode(batch, lines, 0, 3);
  const std::string pieces = *f.encode(batch, lines, 0, 1) + *f.encode(batch, lines, 1, 2);
  EXPECT_EQ(whole, pieces);
  EXPECT_EQ(whole, *f.encode(batch, lines, 0, 3)) << "a retry sends the same bytes";
  EXPECT_FALSE(f.encode(batch, lines, 2, 2).ok());
}

TEST(InfluxFormat, ScalesTimestampsToThePrecision) {
  InfluxOptions o;
  o.precision = TimePrecision::ms;
  const auto body =
      encode_all(InfluxFormat(o), batch_of(1, {test::host_line(1700000060123456789ULL)}));
  EXPECT_NE(body.find(" 1700000060123\n"), std::string::npos) << body;
}

TEST(InfluxFormat, SkipsKindsItDoesNotKnow) {
  InfluxFormat f({});
  EXPECT_EQ(encode_all(f, batch_of(1, {R"({"kind":"numa_node","x":1})"})), "");
}

TEST(InfluxFormat, CannotCarryGapRecords) { EXPECT_FALSE(InfluxFormat({}).sends_gaps()); }

TEST(InfluxFormat, RetriesWhatAnOperatorCanFixAndRejectsMalformedData) {
  InfluxFormat f({});
  EXPECT_EQ(f.classify(204), Outcome::ack);
  EXPECT_EQ(f.classify(400), Outcome::reject);
  EXPECT_EQ(f.classify(401), Outcome::retry);
  EXPECT_EQ(f.classify(404), Outcome::retry);
  EXPECT_EQ(f.classify(413), Outcome::split);
  EXPECT_EQ(f.classify(429), Outcome::retry);
  EXPECT_EQ(f.classify(503), Outcome::retry);
}

TEST(InfluxFormat, BuildsTheWriteUrlWithDatabaseAndPrecision) {
  EXPECT_EQ(influx_write_url("http://vm:8428/write", "", TimePrecision::ns),
            "http://vm:8428/write?precision=ns");
  EXPECT_EQ(influx_write_url("http://i:8086/write?rp=week", "tally db", TimePrecision::us),
            "http://i:8086/write?rp=week&db=tally%20db&precision=u");
  EXPECT_EQ(parse_precision("ms"), TimePrecision::ms);
  EXPECT_FALSE(parse_precision("n").has_value());
}

}  // namespace
}  // namespace tally::shipping

namespace tally::shipping {
namespace {

TEST(InfluxFormat, TopShipsTheBusiestThenTheExactRemainderAndTheGroups) {
  test::ProcessLine a, b, c;
  a.pid = 1;
  a.cpu_ns = 900;
  a.wait_ns = 9;
  b.pid = 2;
  b.cpu_ns = 50;
  b.wait_ns = 5;
  b.comm = "sh";
  c.pid = 3;
  c.cpu_ns = 30;
  c.wait_ns = 3;
  c.comm = "sh";
  std::string host = test::host_line();
  host.replace(host.find("\"processes\":12"), 14, "\"processes\":3");
  InfluxOptions o;
  o.rollup.top = true;
  o.rollup.top_n = 1;
  const std::string body =
      encode_all(InfluxFormat(o), test::batch_of(1, {a.json(), b.json(), c.json(), host}));
  EXPECT_NE(
      body.find("tally_process,cgroup=/system.slice/nginx.service,comm=nginx,host=web-1,pid=1 "),
      std::string::npos)
      << body;
  EXPECT_EQ(body.find(",pid=2 "), std::string::npos) << body;
  EXPECT_NE(body.find("tally_other,host=web-1 cpu_ns=80i,wait_ns=8i,processes=2i,"
                      "interval_ns=60000000000i 1700000060000000000\n"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("tally_group,by=comm,group=sh,host=web-1 cpu_ns=80i,wait_ns=8i,"
                      "rss_bytes=20971520i,processes=2i,other_cpu_ns=80i,other_wait_ns=8i,"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("tally_group,by=comm,group=nginx,host=web-1 cpu_ns=900i,wait_ns=9i,"
                      "rss_bytes=10485760i,processes=1i,other_cpu_ns=0i,"),
            std::string::npos);
  EXPECT_NE(body.find("tally_group,by=cgroup,group=/system.slice/nginx.service,host=web-1 "
                      "cpu_ns=980i,"),
            std::string::npos);
}

}  // namespace
}  // namespace tally::shipping
