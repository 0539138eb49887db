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

}  // namespace
}  // namespace tally::collector
