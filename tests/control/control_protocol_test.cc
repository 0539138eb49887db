// The control protocol's rules, both ends: what tallyd accepts in a request,
// and what the CLI makes of any response.
#include "control/control_protocol.h"

#include <gtest/gtest.h>

namespace tally::control {
namespace {

TEST(ParseRequest, TakesEachCommandWithItsDefaults) {
  auto status = parse_request(R"({"version":1,"command":"status"})"
                              "\n");
  ASSERT_TRUE(status.ok()) << status.error().message();
  EXPECT_TRUE(std::holds_alternative<StatusRequest>(*status));

  auto top = parse_request(R"({"version":1,"command":"top"})");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(std::get<TopRequest>(*top).n, kTopN.fallback);
  auto top5 = parse_request(R"({"command":"top","n":5,"version":1})");
  ASSERT_TRUE(top5.ok());
  EXPECT_EQ(std::get<TopRequest>(*top5).n, 5);

  auto flush = parse_request(R"({"version":1,"command":"flush","timeout_s":3600})");
  ASSERT_TRUE(flush.ok());
  EXPECT_EQ(std::get<FlushRequest>(*flush).timeout_s, 3600);
  EXPECT_EQ(command_name(*flush), "flush");
}

TEST(ParseRequest, IgnoresUnknownFieldsAndThoseACommandDoesNotUse) {
  auto r = parse_request(
      R"({"version":1,"command":"status","n":"x","timeout_s":[],"later":{"a":[1,2,{"b":null}]}})");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(std::holds_alternative<StatusRequest>(*r));
  // An unknown field may repeat: only the fields in use must not.
  EXPECT_TRUE(parse_request(R"({"version":1,"command":"top","x":1,"x":2})").ok());
}

TEST(ParseRequest, RefusesEveryWrongTypeAndRangeNamingTheField) {
  const char* wrong_n[] = {R"("10")",     "null",  "true",       "[10]",
                           R"({"n":10})", "10.0",  "1e1",        "0",
                           "-1",          "10001", "2147483648", "18446744073709551615"};
  for (const char* n : wrong_n) {
    SCOPED_TRACE(n);
    auto r = parse_request(std::string(R"({"version":1,"command":"top","n":)") + n + "}");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(R"(field "n" must be a whole number from 1 to 10000)"),
              std::string::npos)
        << r.error().message();
  }
  auto null_timeout = parse_request(R"({"version":1,"command":"flush","timeout_s":null})");
  ASSERT_FALSE(null_timeout.ok());
  EXPECT_EQ(null_timeout.error().message(),
            R"(field "timeout_s" must be a whole number from 1 to 3600; got null)");
}

TEST(ParseRequest, TopTakesAGroupingAndRefusesAnyOther) {
  auto by = parse_request(R"({"version":1,"command":"top","by":"container"})");
  ASSERT_TRUE(by.ok()) << by.error().message();
  EXPECT_EQ(std::get<TopRequest>(*by).by, TopGrouping::container);
  EXPECT_EQ(std::get<TopRequest>(*parse_request(R"({"version":1,"command":"top"})")).by,
            TopGrouping::process);
  const std::pair<const char*, const char*> wrong[] = {
      {R"("Pod")", R"(got "Pod")"}, {R"("")", R"(got "")"},         {"1", "got 1"},
      {"null", "got null"},         {R"(["pod"])", "got an array"},
  };
  for (const auto& [value, says] : wrong) {
    SCOPED_TRACE(value);
    auto r = parse_request(std::string(R"({"version":1,"command":"top","by":)") + value + "}");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(),
              std::string(R"(field "by" must be one of process, cgroup, container, pod; )") + says);
  }
  // A peer's long value is cut in the message.
  auto long_value = parse_request(std::string(R"({"version":1,"command":"top","by":")") +
                                  std::string(5000, 'x') + "\"}");
  ASSERT_FALSE(long_value.ok());
  EXPECT_LT(long_value.error().message().size(), 200u);
  EXPECT_FALSE(parse_request(R"({"version":1,"command":"top","by":"pod","by":"pod"})").ok());
}

TEST(ParseRequest, TopTakesASortKeyAndRefusesAnyOther) {
  auto sorted = parse_request(R"({"version":1,"command":"top","sort":"pid"})");
  ASSERT_TRUE(sorted.ok()) << sorted.error().message();
  EXPECT_EQ(std::get<TopRequest>(*sorted).sort, TopSort::pid);
  EXPECT_EQ(std::get<TopRequest>(*parse_request(R"({"version":1,"command":"top"})")).sort,
            TopSort::cpu);
  for (const char* name : {"cpu", "rss", "pid", "wait", "container"}) {
    SCOPED_TRACE(name);
    const auto parsed = parse_top_sort(name);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(top_sort_name(*parsed), name);
  }
  const std::pair<const char*, const char*> wrong[] = {
      {R"("PID")", R"(got "PID")"},   {R"("")", R"(got "")"}, {"0", "got 0"},
      {"true", "got true"},           {"null", "got null"},   {R"({"by":"pid"})", "got an object"},
      {R"(" cpu")", R"(got " cpu")"},
  };
  for (const auto& [value, says] : wrong) {
    SCOPED_TRACE(value);
    auto r = parse_request(std::string(R"({"version":1,"command":"top","sort":)") + value + "}");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(
        r.error().message(),
        std::string(R"(field "sort" must be one of cpu, rss, pid, wait, container; )") + says);
  }
  // A peer's long value is cut in the message; a second sort is refused.
  auto long_value = parse_request(std::string(R"({"version":1,"command":"top","sort":")") +
                                  std::string(3000, 'x') + "\"}");
  ASSERT_FALSE(long_value.ok());
  EXPECT_LT(long_value.error().message().size(), 200u);
  EXPECT_FALSE(parse_request(R"({"version":1,"command":"top","sort":"pid","sort":"pid"})").ok());
  // Flush and status ignore it, as they ignore n.
  EXPECT_TRUE(parse_request(R"({"version":1,"command":"status","sort":7})").ok());
}

TEST(ParseRequest, RefusesBadEnvelopes) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "not valid JSON"},
      {"[]", "not an object"},
      {"42", "not a JSON object"},
      {R"({"version":2,"command":"status"})", "protocol version 2 not supported"},
      {R"({"version":"1","command":"status"})", R"(field "version")"},
      {R"({"command":"status"})", R"(no "version")"},
      {R"({"version":1})", R"(no "command")"},
      {R"({"version":1,"command":"halt"})", R"(unknown command "halt")"},
      {R"({"version":1,"command":"top","n":1,"n":2})", "more than once"},
      {R"({"version":1,"version":1,"command":"top"})", "more than once"},
      {std::string(9, '[') + std::string(9, ']'), "not an object"},
      {R"({"a":[[[[[[[[[]]]]]]]]]})", "nested deeper than 8"},
  };
  for (const auto& [line, says] : cases) {
    SCOPED_TRACE(line);
    auto r = parse_request(line);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  }
}

TEST(ParseRequest, CutsALongUnknownCommandOnACharacterBoundary) {
  const std::string name = std::string(31, 'a') + "\xc3\xa9" + std::string(100, 'b');
  auto r = parse_request(R"({"version":1,"command":")" + name + R"("})");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find(std::string(31, 'a') + "...\""), std::string::npos)
      << r.error().message();
}

TEST(ParseResponse, ReadsAnyLineWithoutThrowing) {
  EXPECT_TRUE(parse_response(make_ok({{"a", 1}})).ok());
  EXPECT_EQ(parse_response(make_error("boom")).error().message(), "boom");
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "not a JSON object"},
      {R"({"version":"1","ok":true,"result":{}})", "an unreadable version"},
      {R"({"version":2,"ok":true,"result":{}})", "control protocol 2"},
      {R"({"version":1,"ok":"yes","result":{}})", R"(without "ok")"},
      {R"({"version":1,"ok":false,"error":42})", "without a message"},
      {R"({"version":1,"ok":true,"result":[1]})", "not an object"},
      {R"({"version":1,"ok":true})", "not an object"},
  };
  for (const auto& [line, says] : cases) {
    SCOPED_TRACE(line);
    auto r = parse_response(line);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  }
}

}  // namespace
}  // namespace tally::control
