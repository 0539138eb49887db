// Every bad config gives one exact message: file, line, key, value, and what
// is accepted.
#include "agent/config_file.h"

#include <gtest/gtest.h>

namespace tally::agent {
namespace {

struct BadConfig {
  std::string name;
  std::string text;
  std::string error;
};

class ConfigFileRejects : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigFileRejects, WithTheExactMessage) {
  auto c = parse_config(GetParam().text, "/etc/tally/tally.toml", AgentConfig{});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message(), GetParam().error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigFileRejects,
    ::testing::Values(
        BadConfig{
            "UnknownKey", "[agent]\ninterval = 10\nintervall = 5\n",
            "/etc/tally/tally.toml:3: agent.intervall: unknown key (accepted: interval, "
            "include_idle, backend, attach, log_level, socket, socket_group, "
            "shutdown_timeout, max_cmdline_bytes, kubernetes, cgroup_lines, drop_privileges)"},
        BadConfig{"WrongType", "[agent]\ninterval = \"60\"\n",
                  "/etc/tally/tally.toml:2: agent.interval: expected an integer, got a string "
                  "(\"60\")"},
        BadConfig{"OutOfRange", "[agent]\ninterval = 0\n",
                  "/etc/tally/tally.toml:2: agent.interval: 0 is out of range (accepted: 1 to "
                  "86400)"},
        BadConfig{"NegativeNumber", "[outbox]\ncap_mib = -1\n",
                  "/etc/tally/tally.toml:2: outbox.cap_mib: -1 is out of range (accepted: 1 to "
                  "1048576)"},
        BadConfig{"BadChoice", "[agent]\nbackend = \"ebpf\"\n",
                  "/etc/tally/tally.toml:2: agent.backend: \"ebpf\" is not accepted (accepted: "
                  "auto, bpf, procfs)"},
        BadConfig{"BooleanAsString", "[agent]\ninclude_idle = \"yes\"\n",
                  "/etc/tally/tally.toml:2: agent.include_idle: expected true or false, got a "
                  "string (\"yes\")"},
        BadConfig{"UnknownTable", "[agnet]\ninterval = 5\n",
                  "/etc/tally/tally.toml:1: agnet: unknown table (accepted: [agent], [bpf], "
                  "[outbox], [prometheus], [kubelet], [[sink]], [[group]])"},
        BadConfig{"TopLevelKey", "interval = 5\n",
                  "/etc/tally/tally.toml:1: interval: unknown key (accepted: [agent], [bpf], "
                  "[outbox], [prometheus], [kubelet], [[sink]], [[group]])"},
        BadConfig{"SyntaxError", "[agent]\ninterval = = 5\n",
                  "/etc/tally/tally.toml:2:12: invalid TOML: Error while parsing value: could not "
                  "determine value type"},
        BadConfig{"SlotsNotPowerOfTwo", "[bpf]\nslots_per_cpu = 1000\n",
                  "/etc/tally/tally.toml: bpf.slots_per_cpu: 1000 is not a power of two "
                  "(accepted: 64, 128, ..., 65536)"},
        BadConfig{"SinkWithoutUrl", "[[sink]]\nname = \"c\"\n",
                  "/etc/tally/tally.toml:1: sink[0].url: missing (every sink needs a url)"},
        BadConfig{"SinkBadFormat", "[[sink]]\nurl = \"http://x\"\nformat = \"xml\"\n",
                  "/etc/tally/tally.toml:3: sink[0].format: \"xml\" is not accepted (accepted: "
                  "native, influx, otlp, remote_write)"},
        BadConfig{"DuplicateSinkNames",
                  "[[sink]]\nurl = \"http://a\"\n[[sink]]\nurl = \"http://b\"\n",
                  "/etc/tally/tally.toml:3: sink[1].name: \"default\" is used twice (names must "
                  "be unique)"},
        BadConfig{"GzipLevel", "[[sink]]\nurl = \"http://a\"\ngzip_level = 11\n",
                  "/etc/tally/tally.toml:3: sink[0].gzip_level: 11 is out of range (accepted: 0 "
                  "to 9)"},
        BadConfig{
            "SinkUnknownKey", "[[sink]]\nurl = \"http://a\"\ndb = \"x\"\n",
            "/etc/tally/tally.toml:3: sink[0].db: unknown key (accepted: name, format, url, "
            "token_file, ca_file, connect_timeout, timeout, backoff_base_ms, backoff_cap, "
            "gzip_level, database, precision, cmdline, processes, top_n, min_cpu_pct, max_groups, "
            "username, password_file)"},
        BadConfig{"DatabaseWithoutInflux", "[[sink]]\nurl = \"http://a\"\ndatabase = \"tally\"\n",
                  "/etc/tally/tally.toml:3: sink[0].database: only for format = \"influx\""},
        BadConfig{"PrecisionWithoutInflux",
                  "[[sink]]\nformat = \"otlp\"\nurl = \"http://a\"\nprecision = \"ms\"\n",
                  "/etc/tally/tally.toml:4: sink[0].precision: only for format = \"influx\""},
        BadConfig{"BadPrecision",
                  "[[sink]]\nformat = \"influx\"\nurl = \"http://a\"\nprecision = \"n\"\n",
                  "/etc/tally/tally.toml:4: sink[0].precision: \"n\" is not accepted (accepted: "
                  "ns, us, ms, s)"},
        BadConfig{"CmdlineForNative", "[[sink]]\nurl = \"http://a\"\ncmdline = true\n",
                  "/etc/tally/tally.toml:3: sink[0].cmdline: only for format = \"influx\" or "
                  "\"otlp\" (native always sends it)"},
        BadConfig{"CmdlineNotBoolean",
                  "[[sink]]\nformat = \"otlp\"\nurl = \"http://a\"\ncmdline = \"yes\"\n",
                  "/etc/tally/tally.toml:4: sink[0].cmdline: expected true or false, got a string "
                  "(\"yes\")"},
        BadConfig{"PrometheusListenNotIpPort", "[prometheus]\nlisten = \"localhost:9464\"\n",
                  "/etc/tally/tally.toml:2: prometheus.listen: \"localhost:9464\" is not IP:PORT "
                  "(accepted: an IPv4 address or a bracketed IPv6 address, a colon, and a port 0 "
                  "to 65535, e.g. 127.0.0.1:9464)"},
        BadConfig{"PrometheusListenPortTooLarge", "[prometheus]\nlisten = \"127.0.0.1:70000\"\n",
                  "/etc/tally/tally.toml:2: prometheus.listen: \"127.0.0.1:70000\" is not IP:PORT "
                  "(accepted: an IPv4 address or a bracketed IPv6 address, a colon, and a port 0 "
                  "to 65535, e.g. 127.0.0.1:9464)"},
        BadConfig{"PrometheusTopZero", "[prometheus]\ntop = 0\n",
                  "/etc/tally/tally.toml:2: prometheus.top: 0 is out of range (accepted: 1 to "
                  "100000)"},
        BadConfig{"TopNForNative", "[[sink]]\nurl = \"http://a\"\ntop_n = 5\n",
                  "/etc/tally/tally.toml:3: sink[0].top_n: only for the time-series formats "
                  "(influx, otlp, remote_write); the native sink ships every process"},
        BadConfig{"BadProcesses",
                  "[[sink]]\nformat = \"influx\"\nurl = \"http://a\"\nprocesses = \"some\"\n",
                  "/etc/tally/tally.toml:4: sink[0].processes: \"some\" is not accepted "
                  "(accepted: all, top)"},
        BadConfig{"MinCpuPctNotANumber",
                  "[[sink]]\nformat = \"otlp\"\nurl = \"http://a\"\nmin_cpu_pct = \"5\"\n",
                  "/etc/tally/tally.toml:4: sink[0].min_cpu_pct: expected a number, got a string "
                  "(\"5\")"},
        BadConfig{"MinCpuPctNegative",
                  "[[sink]]\nformat = \"otlp\"\nurl = \"http://a\"\nmin_cpu_pct = -0.5\n",
                  "/etc/tally/tally.toml:4: sink[0].min_cpu_pct: -0.5 is out of range (accepted: "
                  "0 to 100000)"},
        BadConfig{"UsernameWithoutPassword",
                  "[[sink]]\nformat = \"remote_write\"\nurl = \"http://a\"\nusername = \"u\"\n",
                  "/etc/tally/tally.toml:4: sink[0].username: basic auth needs both username and "
                  "password_file"},
        BadConfig{"PasswordForInflux",
                  "[[sink]]\nformat = \"influx\"\nurl = \"http://a\"\npassword_file = \"/p\"\n",
                  "/etc/tally/tally.toml:4: sink[0].password_file: only for format = "
                  "\"remote_write\""},
        BadConfig{"BasicAndBearer",
                  "[[sink]]\nformat = \"remote_write\"\nurl = \"http://a\"\nusername = \"u\"\n"
                  "password_file = \"/p\"\ntoken_file = \"/t\"\n",
                  "/etc/tally/tally.toml:5: sink[0].password_file: give token_file (bearer) or "
                  "username and password_file (basic), not both"},
        BadConfig{"GroupWithoutPattern", "[[group]]\nname = \"web\"\n",
                  "/etc/tally/tally.toml:1: group[0] (\"web\"): give exactly one of comm, cmdline "
                  "or cgroup (a regular expression), not 0"},
        BadConfig{"GroupTwoPatterns", "[[group]]\nname = \"web\"\ncomm = \"a\"\ncgroup = \"b\"\n",
                  "/etc/tally/tally.toml:1: group[0] (\"web\"): give exactly one of comm, cmdline "
                  "or cgroup (a regular expression), not 2"},
        BadConfig{"GroupWithoutName", "[[group]]\ncomm = \"a\"\n",
                  "/etc/tally/tally.toml:1: group[0].name: missing (a group's name is its label "
                  "value)"},
        BadConfig{"GroupUnknownKey", "[[group]]\nname = \"a\"\nexe = \"a\"\n",
                  "/etc/tally/tally.toml:3: group[0].exe: unknown key (accepted: name, comm, "
                  "cmdline, cgroup)"},
        BadConfig{"GroupBadRegex", "[[group]]\nname = \"a\"\ncmdline = \"(x\"\n",
                  "/etc/tally/tally.toml: group 1 (\"a\"): cmdline pattern \"(x\" does not "
                  "compile: missing ): (x"},
        BadConfig{"PrometheusUnknownKey", "[prometheus]\nport = 9464\n",
                  "/etc/tally/tally.toml:2: prometheus.port: unknown key (accepted: listen, top, "
                  "min_cpu_ms)"}),
    [](const ::testing::TestParamInfo<BadConfig>& p) { return p.param.name; });

TEST(ConfigFile, KeysAbsentFromTheFileKeepTheirDefaults) {
  auto c = parse_config("[agent]\ninterval = 15\n", "t.toml", AgentConfig{});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->interval_s, 15u);
  EXPECT_EQ(c->outbox_path, "/var/lib/tally/outbox.db");
  EXPECT_EQ(c->backend, "auto");
}

TEST(ConfigFile, ReadsEverySection) {
  auto c = parse_config(R"(
[agent]
interval = 30
backend = "procfs"
attach = "raw_tp"
socket = "/tmp/t.sock"
[bpf]
slots_per_cpu = 2048
max_processes = 65536
[outbox]
path = "/data/outbox.db"
cap_mib = 64
batch_max_age = 120
[[sink]]
name = "collector"
url = "https://c.example:8443/v1/batches"
token_file = "/etc/tally/token"
timeout = 10
[[sink]]
name = "backup"
url = "http://b/v1/batches"
[[sink]]
name = "vm"
format = "influx"
url = "http://vminsert:8480/insert/42/influx/write"
database = "tally"
precision = "ms"
cmdline = true
[[sink]]
name = "otel"
format = "otlp"
url = "https://otel:4318/v1/metrics"
[[sink]]
name = "mimir"
format = "remote_write"
url = "https://mimir/api/v1/push"
processes = "top"
top_n = 30
min_cpu_pct = 2.5
max_groups = 20
username = "tenant"
password_file = "/etc/tally/mimir-password"
[[group]]
name = "web"
comm = "^(nginx|httpd)$"
[[group]]
name = "jobs"
cmdline = "--batch"
[prometheus]
listen = "127.0.0.1:9464"
top = 50
min_cpu_ms = 100
)",
                        "t.toml", AgentConfig{});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->interval_s, 30u);
  EXPECT_EQ(c->backend, "procfs");
  EXPECT_EQ(c->attach, AttachMode::raw_tp);
  EXPECT_EQ(c->slots_per_cpu, 2048u);
  EXPECT_EQ(c->max_processes, 65536u);
  EXPECT_EQ(c->outbox_cap_mib, 64u);
  EXPECT_EQ(c->batch_max_age_s, 120u);
  ASSERT_EQ(c->sinks.size(), 5u);
  EXPECT_EQ(c->sinks[4].format, "remote_write");
  EXPECT_EQ(c->sinks[4].processes, "top");
  EXPECT_EQ(c->sinks[4].top_n, 30u);
  EXPECT_EQ(c->sinks[4].min_cpu_pct, 2.5);
  EXPECT_EQ(c->sinks[4].max_groups, 20u);
  EXPECT_EQ(c->sinks[4].username, "tenant");
  EXPECT_EQ(c->sinks[3].processes, "all");
  ASSERT_EQ(c->groups.size(), 2u);
  EXPECT_EQ(c->groups[0], (GroupConfig{"web", "comm", "^(nginx|httpd)$"}));
  EXPECT_EQ(c->groups[1], (GroupConfig{"jobs", "cmdline", "--batch"}));
  EXPECT_EQ(c->sinks[0].name, "collector");
  EXPECT_EQ(c->sinks[0].format, "native");
  EXPECT_EQ(c->sinks[0].timeout_s, 10u);
  EXPECT_EQ(c->sinks[1].url, "http://b/v1/batches");
  EXPECT_EQ(c->sinks[2].format, "influx");
  EXPECT_EQ(c->sinks[2].database, "tally");
  EXPECT_EQ(c->sinks[2].precision, "ms");
  EXPECT_TRUE(c->sinks[2].cmdline);
  EXPECT_EQ(c->sinks[3].format, "otlp");
  EXPECT_FALSE(c->sinks[3].cmdline);
  EXPECT_EQ(c->prometheus_listen, "127.0.0.1:9464");
  EXPECT_EQ(c->prometheus_top, 50u);
  EXPECT_EQ(c->prometheus_min_cpu_ms, 100u);
}

TEST(ConfigFile, TheExampleConfigInTheRepositoryIsValid) {
  auto c = load_config_file(EXAMPLE_CONFIG_PATH, true, AgentConfig{});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->interval_s, 60u);
}

}  // namespace
}  // namespace tally::agent
