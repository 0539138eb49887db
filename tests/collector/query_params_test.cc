#include "collector/query_params.h"

#include <gtest/gtest.h>

#include "collector/json_field.h"

namespace tally::collector {
namespace {

TEST(QueryParams, DefaultsWhenNothingIsGiven) {
  auto q = parse_sample_query("");
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE(q->host);
  EXPECT_FALSE(q->pid);
  EXPECT_EQ(q->from, 0u);
  EXPECT_EQ(q->to, kMaxStoredInteger);
  EXPECT_EQ(q->limit, 1000u);
  auto t = parse_top_query("");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->n, 10u);
}

TEST(QueryParams, ParsesAndPercentDecodes) {
  auto q = parse_sample_query("host=web%2D1+a&pid=42&from=5&to=9&limit=100000");
  ASSERT_TRUE(q.ok()) << q.error().message();
  EXPECT_EQ(*q->host, "web-1 a");
  EXPECT_EQ(*q->pid, 42u);
  EXPECT_EQ(q->from, 5u);
  EXPECT_EQ(q->to, 9u);
  EXPECT_EQ(q->limit, 100000u);
}

TEST(QueryParams, EmptyValuesCountAsNotGiven) {
  auto q = parse_sample_query("host=&pid=&from=&to=&limit=");
  ASSERT_TRUE(q.ok()) << q.error().message();
  EXPECT_FALSE(q->host);
  EXPECT_FALSE(q->pid);
}

struct BadQuery {
  std::string query;
  std::string error;
};

void PrintTo(const BadQuery& b, std::ostream* os) { *os << b.query; }

class SampleQueryRejects : public ::testing::TestWithParam<BadQuery> {};

TEST_P(SampleQueryRejects, NamingTheParameter) {
  auto q = parse_sample_query(GetParam().query);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().message(), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SampleQueryRejects,
    ::testing::Values(BadQuery{"limit=0", "limit: must be 1 to 100000, got 0"},
                      BadQuery{"limit=100001", "limit: must be 1 to 100000, got 100001"},
                      BadQuery{"limit=ten", "limit: expected an unsigned integer, got \"ten\""},
                      BadQuery{"pid=-1", "pid: expected an unsigned integer, got \"-1\""},
                      BadQuery{"pid=4294967296", "pid: must be 0 to 4294967295, got 4294967296"},
                      BadQuery{"from=99999999999999999999",
                               "from: must be 0 to 9223372036854775807, got 99999999999999999999"},
                      BadQuery{"from=9&to=3", "from: 9 is after to 3"},
                      BadQuery{"host=a&host=b", "host: given twice"},
                      BadQuery{"n=3",
                               "n: unknown parameter (accepted: host, pid, from, to, limit)"},
                      BadQuery{"host=%zz", "host: invalid percent-encoding"}));

TEST(QueryParams, TopChecksN) {
  auto t = parse_top_query("n=0");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(), "n: must be 1 to 10000, got 0");
  EXPECT_FALSE(parse_top_query("limit=3").ok());
}

TEST(QueryParams, TopTakesAGrouping) {
  auto t = parse_top_query("by=cgroup&from=5");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->by, GroupKind::cgroup);
  EXPECT_TRUE(t->window_given);
  EXPECT_FALSE(parse_top_query("").value().window_given);
  auto bad = parse_top_query("by=pod");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message(), "by: expected host, comm, cgroup or process, got \"pod\"");
}

constexpr std::uint64_t kNow = 1'800'000'000'000'000'000ULL;
constexpr std::uint64_t kHourNs = 3'600'000'000'000ULL;

TEST(QueryParams, SeriesDefaultsToTheLastHourInSteps) {
  auto r = parse_series_query("", kNow);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->query.to, kNow);
  EXPECT_EQ(r->query.from, kNow - kHourNs);
  EXPECT_EQ(r->query.step_ns, 60'000'000'000u) << "an hour: a minute, tallyd's interval";
  EXPECT_EQ(r->query.group_by, GroupKind::host);
  EXPECT_FALSE(r->csv);
  // A day: 5 minutes (minute rollups); a week: an hour (hour rollups).
  EXPECT_EQ(parse_series_query("from=0&to=86400000000000", kNow)->query.step_ns, 300'000'000'000u);
  EXPECT_EQ(parse_series_query("from=0&to=604800000000000", kNow)->query.step_ns,
            3'600'000'000'000u);
  auto csv = parse_series_query("host=web-1&group_by=comm&step=60&top=3&format=csv", kNow);
  ASSERT_TRUE(csv.ok()) << csv.error().message();
  EXPECT_TRUE(csv->csv);
  EXPECT_EQ(csv->query.host, "web-1");
  EXPECT_EQ(csv->query.group_by, GroupKind::comm);
  EXPECT_EQ(csv->query.step_ns, 60'000'000'000u);
  EXPECT_EQ(csv->query.top, 3u);
}

class SeriesQueryRejects : public ::testing::TestWithParam<BadQuery> {};

TEST_P(SeriesQueryRejects, NamingTheParameter) {
  auto q = parse_series_query(GetParam().query, kNow);
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().message(), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SeriesQueryRejects,
    ::testing::Values(
        BadQuery{"group_by=pid", "group_by: expected host, comm, cgroup or process, got \"pid\""},
        BadQuery{"step=0", "step: must be 1 to 31622400, got 0"},
        BadQuery{"from=0&to=86400000000000&step=1",
                 "step: 1 s makes 86401 points from 0 to 86400000000000, at most 10000"},
        BadQuery{"top=101", "top: must be 1 to 100, got 101"},
        BadQuery{"format=xml", "format: expected json or csv, got \"xml\""},
        BadQuery{"from=9&to=9", "from: 9 is not before to 9"},
        BadQuery{"to=0", "to: must be 1 to 9223372036854775807, got 0"},
        BadQuery{"n=3",
                 "n: unknown parameter (accepted: host, group_by, from, to, step, top, format, "
                 "source)"},
        BadQuery{"source=disk", "source: expected raw, rollup_1m or rollup_1h, got \"disk\""},
        BadQuery{"step=90&source=rollup_1m", "step: 90 s does not fit source rollup_1m"}));

}  // namespace
}  // namespace tally::collector
