// tallyd's command line: every bad flag or value is one clear line, exit 2.
#include <gtest/gtest.h>

#include "subprocess.h"

namespace tally::test {
namespace {

struct BadFlag {
  std::string name;
  std::vector<std::string> args;
  std::string must_mention;  // the flag, and what is accepted
};

class TallydBadFlags : public ::testing::TestWithParam<BadFlag> {};

TEST_P(TallydBadFlags, ExitWithCodeTwoAndOneLineNamingTheFlag) {
  std::vector<std::string> argv{TALLYD_PATH};
  for (const auto& a : GetParam().args) argv.push_back(a);
  RunResult r = run(argv, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find(GetParam().must_mention), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Table, TallydBadFlags,
    ::testing::Values(
        BadFlag{"IntervalZeroNamesTheFlag", {"--interval", "0"}, "--interval"},
        BadFlag{"IntervalZeroGivesTheRange", {"--interval", "0"}, "1 to 86400"},
        BadFlag{"IntervalNotANumber", {"--interval", "abc"}, "--interval"},
        BadFlag{"IntervalNegative", {"--interval", "-5"}, "--interval"},
        BadFlag{"UnknownBackend", {"--backend", "ebpf"}, "{auto,bpf,procfs}"},
        BadFlag{"UnknownAttachMode", {"--attach", "kprobe"}, "--attach"},
        BadFlag{"SlotsNotAPowerOfTwo", {"--slots-per-cpu", "1000"}, "power of two"},
        BadFlag{"TooFewProcesses", {"--max-processes", "10"}, "--max-processes"},
        BadFlag{"UnknownFormat", {"--format", "prometheus"}, "{native,influx,otlp,remote_write}"},
        BadFlag{
            "PrometheusListenWithoutHost", {"--prometheus-listen", "9464"}, "--prometheus-listen"},
        BadFlag{"PrometheusListenWithoutPort",
                {"--prometheus-listen", "0.0.0.0"},
                "e.g. 127.0.0.1:9464"},
        BadFlag{"PrometheusTopZero", {"--prometheus-top", "0"}, "--prometheus-top"},
        BadFlag{"UnknownFlag", {"--no-such-flag"}, "--no-such-flag"},
        BadFlag{"StrayArgument", {"extra-argument"}, "extra-argument"},
        BadFlag{"GzipLevelTooHigh", {"--gzip-level", "10"}, "--gzip-level"},
        BadFlag{"ShutdownTimeoutTooLong", {"--shutdown-timeout", "9999"}, "--shutdown-timeout"}),
    [](const ::testing::TestParamInfo<BadFlag>& p) { return p.param.name; });

TEST(TallydHelp, PrintsUsageWithExamplesAndExitsZero) {
  RunResult r = run({TALLYD_PATH, "--help"}, std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--interval"), std::string::npos);
  EXPECT_NE(r.out.find("Examples"), std::string::npos);
  for (const char* flag : {"--format", "--database", "--prometheus-listen", "--prometheus-top",
                           "--prometheus-min-cpu-ms"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST(TallydCheckConfig, AcceptsEveryFormatFromTheCommandLine) {
  for (const char* format : {"native", "influx", "otlp"}) {
    RunResult r = run({TALLYD_PATH, "--check-config", "--config", "/nonexistent.toml", "--endpoint",
                       "http://127.0.0.1:1/x", "--format", format},
                      std::chrono::seconds(10));
    // A --config that does not exist is an error; the flags alone are fine.
    EXPECT_EQ(r.exit_code, 2) << r.err;
    r = run({TALLYD_PATH, "--check-config", "--endpoint", "http://127.0.0.1:1/x", "--format",
             format, "--prometheus-listen", "127.0.0.1:9464"},
            std::chrono::seconds(10));
    EXPECT_EQ(r.exit_code, 0) << format << ": " << r.err;
  }
  RunResult r = run(
      {TALLYD_PATH, "--check-config", "--endpoint", "http://127.0.0.1:1/x", "--database", "tally"},
      std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("a database is only for format influx"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tally::test
