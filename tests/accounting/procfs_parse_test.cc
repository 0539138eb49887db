#include "accounting/procfs.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

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

TEST(ParseCgroup, UsesTheV2PathOnAHybridHostWhenItNamesARealPlace) {
  const std::string text =
      "12:pids:/user.slice\n"
      "4:cpu,cpuacct:/docker/abc\n"
      "1:name=systemd:/user.slice/session-1.scope\n"
      "0::/user.slice/session-1.scope\n";
  EXPECT_EQ(parse_cgroup(text), "/user.slice/session-1.scope");
}

TEST(ParseCgroup, UsesTheV1CpuPathOnAHybridHostWhoseV2LineSaysOnlyRoot) {
  // This machine's own layout: cpu mounted on v1, nothing placed in unified.
  const std::string text =
      "9:name=systemd:/system.slice/x.service\n"
      "4:memory:/process_api/4eeb\n"
      "1:cpu:/tally-test/burner\n"
      "0::/\n";
  EXPECT_EQ(parse_cgroup(text), "/tally-test/burner");
}

TEST(ParseCgroup, UsesTheSystemdHierarchyWhenV2AndCpuSayOnlyRoot) {
  EXPECT_EQ(parse_cgroup("9:name=systemd:/system.slice/x.service\n1:cpu:/\n0::/\n"),
            "/system.slice/x.service");
  EXPECT_EQ(parse_cgroup("9:name=systemd:/\n1:cpu:/\n0::/\n"), "/");
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

TEST(CmdlineForDisplay, CutsALongCommandLineAndSaysSo) {
  const std::string marker(kCmdlineCutMarker);
  // Exactly the limit, with or without the NUL that ends the last argument:
  // whole, unmarked.
  EXPECT_EQ(cmdline_for_display(std::string("abcd\0", 5), 4), "abcd");
  EXPECT_EQ(cmdline_for_display("abcd", 4), "abcd");
  // One byte more: cut and marked, also when the byte past is a separator.
  EXPECT_EQ(cmdline_for_display("abcde", 4), "abcd" + marker);
  EXPECT_EQ(cmdline_for_display(std::string("abcd\0e\0", 8), 4), "abcd" + marker);
  EXPECT_EQ(cmdline_for_display(std::string("ab\0cd\0ef", 9), 4), "ab c" + marker);
  // Never half a character: "é" is two bytes.
  EXPECT_EQ(cmdline_for_display("abc\xc3\xa9xyz", 4), "abc" + marker);
  EXPECT_EQ(cmdline_for_display("ab\xc3\xa9xyz", 4), "ab\xc3\xa9" + marker);
  // The default limit.
  const std::string huge(1 << 20, 'x');
  const std::string shown = cmdline_for_display(huge);
  EXPECT_EQ(shown.size(), kDefaultMaxCmdlineBytes + marker.size());
  EXPECT_EQ(shown.substr(kDefaultMaxCmdlineBytes), marker);
}

// A real process with 1 MiB of arguments: tallyd reads no more of it than
// it keeps.
TEST(ReadCmdline, ReadsOnlyWhatTheLimitKeepsOfAHugeCommandLine) {
  const std::string arg(100 * 1024, 'a');
  std::vector<std::string> args(10, arg);
  std::vector<char*> argv{const_cast<char*>("/bin/sleep"), const_cast<char*>("30")};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    execv("/bin/sleep", argv.data());
    _exit(127);
  }
  std::string raw;
  for (int i = 0; i < 200; ++i) {  // until the exec is done
    raw = read_cmdline(static_cast<std::uint32_t>(child), 4096);
    if (raw.rfind("/bin/sleep", 0) == 0) break;
    usleep(10'000);
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(raw.size(), 4096u + 2u);
  const std::string shown = cmdline_for_display(raw, 4096);
  EXPECT_EQ(shown.size(), 4096u + kCmdlineCutMarker.size());
  EXPECT_EQ(shown.rfind("/bin/sleep 30 aaaa", 0), 0u) << shown.substr(0, 40);
  EXPECT_EQ(shown.substr(4096), kCmdlineCutMarker);
}

TEST(ParseSteal, ReadsTheEighthNumberOfTheCpuLine) {
  EXPECT_EQ(
      parse_steal_ticks("cpu  4705 150 1120 16250 520 30 45 77 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"),
      77u);
  EXPECT_EQ(parse_steal_ticks("cpu  1 2 3 4 5 6 7\n"), std::nullopt);  // a kernel before steal
  EXPECT_EQ(parse_steal_ticks("intr 5\n"), std::nullopt);
  EXPECT_EQ(parse_steal_ticks("cpu  1 2 3 4 5 6 7 x 9\n"), std::nullopt);
}

TEST(ParsePressure, ReadsSomeAndFullTotals) {
  const auto p = parse_pressure(
      "some avg10=1.50 avg60=0.80 avg300=0.20 total=123456\n"
      "full avg10=0.00 avg60=0.00 avg300=0.00 total=789\n");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->some_us, 123456u);
  EXPECT_EQ(p->full_us, 789u);
  // Kernels before 5.13 have no "full" line for CPU.
  const auto some_only = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
  ASSERT_TRUE(some_only.has_value());
  EXPECT_EQ(some_only->full_us, 0u);
  EXPECT_FALSE(parse_pressure("").has_value());
  EXPECT_FALSE(parse_pressure("some avg10=0.00 total=12x\n").has_value());
}

}  // namespace
}  // namespace tally::accounting::procfs
