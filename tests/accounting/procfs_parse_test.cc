#include "procfs.h"

#include <gtest/gtest.h>

namespace tally::accounting::procfs {
namespace {

TEST(ParseStat, ReadsTheFieldsAfterACommWithSpacesAndParentheses) {
  const std::string text =
      "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
      "250 75 0 0 20 0 3 0 123456 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1";
  auto st = parse_stat(text);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(st->comm, "my (odd) prog");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 1u);
  EXPECT_EQ(st->utime_ticks, 250u);
  EXPECT_EQ(st->stime_ticks, 75u);
  EXPECT_EQ(st->num_threads, 3u);
  EXPECT_EQ(st->start_ticks, 123456u);
}

TEST(ParseStat, RejectsTruncatedText) {
  EXPECT_FALSE(parse_stat("12 (x) S 1 2").ok());
  EXPECT_FALSE(parse_stat("no parentheses at all").ok());
}

TEST(ParseSchedstat, ReturnsTheRuntimeField) {
  EXPECT_EQ(parse_schedstat_runtime("123456789 1000 5\n"), 123456789u);
  EXPECT_FALSE(parse_schedstat_runtime("").has_value());
}

TEST(ParseStatm, ReturnsResidentPages) {
  EXPECT_EQ(parse_statm_resident_pages("1000 250 10 1 0 100 0\n"), 250u);
  EXPECT_FALSE(parse_statm_resident_pages("1000").has_value());
}

TEST(ParseCgroup, UsesTheV2PathOnAPureCgroup2Host) {
  EXPECT_EQ(parse_cgroup("0::/system.slice/nginx.service\n"), "/system.slice/nginx.service");
}

TEST(ParseCgroup, UsesTheCpuControllersPathOnAV1OrHybridHost) {
  const std::string text =
      "12:pids:/user.slice\n"
      "4:cpu,cpuacct:/docker/abc\n"
      "1:name=systemd:/user.slice/session-1.scope\n"
      "0::/user.slice/session-1.scope\n";
  EXPECT_EQ(parse_cgroup(text), "/docker/abc");
}

TEST(ParseCgroup, FallsBackToV2WhenNoV1CpuHierarchy) {
  EXPECT_EQ(parse_cgroup("3:memory:/a\n0::/b\n"), "/b");
  EXPECT_EQ(parse_cgroup(""), "");
}

TEST(CmdlineForDisplay, JoinsArgumentsWithSpacesAndDropsTrailingNuls) {
  EXPECT_EQ(cmdline_for_display(std::string("nginx\0-g\0daemon off;\0", 21)),
            "nginx -g daemon off;");
  EXPECT_EQ(cmdline_for_display(""), "");
}

}  // namespace
}  // namespace tally::accounting::procfs
