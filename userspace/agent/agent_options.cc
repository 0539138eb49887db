#include "agent/agent_options.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "agent/config_file.h"
#include "agent/listen_address.h"

namespace tally::agent {

namespace {

const CLI::Validator kPowerOfTwo(
    [](std::string& value) -> std::string {
      unsigned long v = std::stoul(value);
      if (v == 0 || (v & (v - 1)) != 0) return "must be a power of two (64 to 65536)";
      return {};
    },
    "POWER_OF_TWO");

const CLI::Validator kListenAddress(
    [](std::string& value) -> std::string {
      auto a = parse_listen_address(value);
      return a.ok() ? std::string() : a.error().message();
    },
    "IP:PORT");

// Registers a flag whose value, when given, overrides one config field.
template <typename T, typename Apply>
CLI::Option* override_flag(CLI::App& app, AgentCommandLine& cmd, const std::string& name,
                           const std::string& help, Apply apply) {
  auto value = std::make_shared<T>();
  CLI::Option* opt = app.add_option(name, *value, help);
  opt->each([&cmd, value, apply](const std::string&) {
    cmd.overrides.push_back([value, apply](AgentConfig& c) { apply(c, *value); });
  });
  return opt;
}

SinkConfig& default_sink(AgentConfig& c) {
  for (auto& s : c.sinks) {
    if (s.name == "default") return s;
  }
  c.sinks.emplace_back();
  return c.sinks.back();
}

// How and what tallyd samples.
void add_sampling_flags(CLI::App& app, AgentCommandLine& cmd) {
  override_flag<std::uint32_t>(app, cmd, "--interval", "Seconds between samples (1 to 86400)",
                               [](AgentConfig& c, std::uint32_t v) { c.interval_s = v; })
      ->check(CLI::Range(1u, 86400u));
  app.add_flag_callback(
      "--stdout", [&cmd] { cmd.overrides.push_back([](AgentConfig& c) { c.to_stdout = true; }); },
      "Print each interval's samples as JSON lines once they are committed");
  app.add_flag_callback(
      "--once", [&cmd] { cmd.overrides.push_back([](AgentConfig& c) { c.once = true; }); },
      "Sample one interval, commit it, then exit");
  app.add_flag_callback(
      "--keep-privileges",
      [&cmd] { cmd.overrides.push_back([](AgentConfig& c) { c.drop_privileges = false; }); },
      "Keep every capability after start-up, without no_new_privs or a seccomp filter "
      "(for debugging; agent.drop_privileges = false)");
  app.add_flag_callback(
      "--all", [&cmd] { cmd.overrides.push_back([](AgentConfig& c) { c.include_idle = true; }); },
      "Also report live processes that used no CPU");
  override_flag<std::string>(app, cmd, "--backend", "Where CPU time comes from: auto, bpf, procfs",
                             [](AgentConfig& c, const std::string& v) { c.backend = v; })
      ->check(CLI::IsMember({"auto", "bpf", "procfs"}));
  override_flag<std::string>(app, cmd, "--attach", "BPF attach mode: auto, tp_btf, raw_tp",
                             [](AgentConfig& c, const std::string& v) {
                               c.attach = v == "tp_btf"   ? AttachMode::tp_btf
                                          : v == "raw_tp" ? AttachMode::raw_tp
                                                          : AttachMode::automatic;
                             })
      ->check(CLI::IsMember({"auto", "tp_btf", "raw_tp"}));
  override_flag<std::uint32_t>(app, cmd, "--slots-per-cpu",
                               "Per-CPU process slots in the kernel (power of two, 64 to 65536)",
                               [](AgentConfig& c, std::uint32_t v) { c.slots_per_cpu = v; })
      ->check(CLI::Range(64u, 65536u) & kPowerOfTwo);
  override_flag<std::uint32_t>(app, cmd, "--max-processes",
                               "Kernel map entries for processes (128 to 4194304)",
                               [](AgentConfig& c, std::uint32_t v) { c.max_processes = v; })
      ->check(CLI::Range(128u, 4194304u));
  override_flag<std::uint32_t>(app, cmd, "--exec-cache",
                               "Kernel map entries for exec records (64 to 1048576)",
                               [](AgentConfig& c, std::uint32_t v) { c.exec_cache = v; })
      ->check(CLI::Range(64u, 1048576u));
  override_flag<std::uint32_t>(app, cmd, "--max-cmdline-bytes",
                               "Command-line bytes kept per process (64 to 1048576, default "
                               "4096); longer ones are cut and end in ...[truncated]",
                               [](AgentConfig& c, std::uint32_t v) { c.max_cmdline_bytes = v; })
      ->check(CLI::Range(64u, 1048576u));
  override_flag<std::string>(app, cmd, "--log-level", "debug, info, warning or error",
                             [](AgentConfig& c, const std::string& v) { c.log_level = v; })
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
}

// Where samples wait, and how they are batched.
void add_outbox_flags(CLI::App& app, AgentCommandLine& cmd) {
  override_flag<std::string>(app, cmd, "--outbox",
                             "Outbox database (default /var/lib/tally/outbox.db)",
                             [](AgentConfig& c, const std::string& v) { c.outbox_path = v; });
  override_flag<std::uint64_t>(app, cmd, "--outbox-cap-mib",
                               "Outbox size cap in MiB (1 to 1048576)",
                               [](AgentConfig& c, std::uint64_t v) { c.outbox_cap_mib = v; })
      ->check(CLI::Range(1ull, 1048576ull));
  override_flag<std::uint32_t>(app, cmd, "--batch-max-age",
                               "Seconds samples may wait to fill a batch (0 to 86400)",
                               [](AgentConfig& c, std::uint32_t v) { c.batch_max_age_s = v; })
      ->check(CLI::Range(0u, 86400u));
}

// The sink "default", as flags.
void add_default_sink_flags(CLI::App& app, AgentCommandLine& cmd) {
  override_flag<std::string>(app, cmd, "--endpoint", "Ship batches to this URL (sink \"default\")",
                             [](AgentConfig& c, const std::string& v) { default_sink(c).url = v; });
  override_flag<std::string>(
      app, cmd, "--format",
      "Protocol of --endpoint: native (tally-collector), influx (InfluxDB "
      "line protocol: VictoriaMetrics, InfluxDB 1.x), otlp (OTLP/HTTP JSON)",
      [](AgentConfig& c, const std::string& v) { default_sink(c).format = v; })
      ->check(CLI::IsMember({"native", "influx", "otlp"}));
  override_flag<std::string>(
      app, cmd, "--database", "Database for --format influx (?db=)",
      [](AgentConfig& c, const std::string& v) { default_sink(c).database = v; });
  override_flag<std::string>(
      app, cmd, "--token-file", "File with a bearer token for --endpoint",
      [](AgentConfig& c, const std::string& v) { default_sink(c).token_file = v; });
  override_flag<std::string>(
      app, cmd, "--ca-file", "CA bundle to verify --endpoint's certificate",
      [](AgentConfig& c, const std::string& v) { default_sink(c).ca_file = v; });
  override_flag<int>(app, cmd, "--gzip-level", "gzip level for --endpoint (0 to 9)",
                     [](AgentConfig& c, int v) { default_sink(c).gzip_level = v; })
      ->check(CLI::Range(0, 9));
  override_flag<std::uint32_t>(
      app, cmd, "--connect-timeout", "Seconds to connect (1 to 600)",
      [](AgentConfig& c, std::uint32_t v) { default_sink(c).connect_timeout_s = v; })
      ->check(CLI::Range(1u, 600u));
  override_flag<std::uint32_t>(
      app, cmd, "--timeout", "Seconds for a whole request (1 to 3600)",
      [](AgentConfig& c, std::uint32_t v) { default_sink(c).timeout_s = v; })
      ->check(CLI::Range(1u, 3600u));
  override_flag<std::uint32_t>(
      app, cmd, "--backoff-base-ms", "First retry delay bound, ms (1 to 600000)",
      [](AgentConfig& c, std::uint32_t v) { default_sink(c).backoff_base_ms = v; })
      ->check(CLI::Range(1u, 600000u));
  override_flag<std::uint32_t>(
      app, cmd, "--backoff-cap", "Longest retry delay, s (1 to 86400)",
      [](AgentConfig& c, std::uint32_t v) { default_sink(c).backoff_cap_s = v; })
      ->check(CLI::Range(1u, 86400u));
}

// What tallyd serves: /metrics, the control socket, shutdown.
void add_service_flags(CLI::App& app, AgentCommandLine& cmd) {
  override_flag<std::string>(app, cmd, "--prometheus-listen",
                             "Serve /metrics for Prometheus on IP:PORT (e.g. 127.0.0.1:9464; off "
                             "by default)",
                             [](AgentConfig& c, const std::string& v) { c.prometheus_listen = v; })
      ->check(kListenAddress);
  override_flag<std::uint32_t>(app, cmd, "--prometheus-top",
                               "Processes on /metrics: the N with most CPU (1 to 100000)",
                               [](AgentConfig& c, std::uint32_t v) { c.prometheus_top = v; })
      ->check(CLI::Range(1u, 100000u));
  override_flag<std::uint64_t>(app, cmd, "--prometheus-min-cpu-ms",
                               "Processes on /metrics: only those with this much CPU, ms",
                               [](AgentConfig& c, std::uint64_t v) { c.prometheus_min_cpu_ms = v; })
      ->check(CLI::Range(0ull, 86400000ull));

  override_flag<std::string>(
      app, cmd, "--socket",
      "Control socket (default /run/tally/tally.sock); only a stale socket there is "
      "replaced, and its directory must be root's",
      [](AgentConfig& c, const std::string& v) { c.socket_path = v; });
  override_flag<std::string>(app, cmd, "--socket-group",
                             "Group allowed to use the socket (mode 0660)",
                             [](AgentConfig& c, const std::string& v) { c.socket_group = v; });
  override_flag<std::uint32_t>(app, cmd, "--shutdown-timeout",
                               "Seconds to ship pending batches on SIGTERM (0 to 3600)",
                               [](AgentConfig& c, std::uint32_t v) { c.shutdown_timeout_s = v; })
      ->check(CLI::Range(0u, 3600u));
}

}  // namespace

AgentCommandLine parse_agent_command_line(int argc, char** argv) {
  AgentCommandLine cmd;
  CLI::App app{
      "tallyd: counts CPU time per process with eBPF and ships it, losing nothing.\n\n"
      "Examples:\n"
      "  tallyd --stdout --interval 1 --outbox /tmp/outbox.db   print samples every second\n"
      "  tallyd --endpoint http://collector:8080/v1/batches     ship to tally-collector\n"
      "  tallyd --endpoint http://vm:8428/write --format influx  ship to VictoriaMetrics\n"
      "  tallyd --endpoint http://otel:4318/v1/metrics --format otlp\n"
      "                                                         ship to an OpenTelemetry "
      "Collector\n"
      "  tallyd --prometheus-listen 127.0.0.1:9464              serve /metrics for Prometheus\n"
      "  tallyd --check-config --config /etc/tally/tally.toml   validate a config file\n",
      "tallyd"};
  app.get_formatter()->column_width(36);
  app.add_option("--config", cmd.config_path, "Config file (TOML)")
      ->each([&cmd](const std::string&) { cmd.config_path_given = true; })
      ->capture_default_str();
  app.add_flag("--check-config", cmd.check_config, "Validate the config and flags, then exit");

  add_sampling_flags(app, cmd);
  add_outbox_flags(app, cmd);
  add_default_sink_flags(app, cmd);
  add_service_flags(app, cmd);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    cmd.exit_code = 0;
    return cmd;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tallyd: %s (see tallyd --help)\n", e.what());
    cmd.exit_code = 2;
    return cmd;
  }
  cmd.proceed = true;
  return cmd;
}

Result<AgentConfig> resolve_config(const AgentCommandLine& cmd) {
  auto config = load_config_file(cmd.config_path, cmd.config_path_given, AgentConfig{});
  if (!config.ok()) return config.error();
  cmd.apply(*config);
  for (const auto& s : config->sinks) {
    if (s.url.empty()) {
      return Error::format("sink \"{}\": no url (give --endpoint with the token/CA flags)", s.name);
    }
    if (s.format != "influx" && !s.database.empty()) {
      return Error::format("sink \"{}\": a database is only for format influx (it is {})", s.name,
                           s.format);
    }
  }
  return config;
}

}  // namespace tally::agent
