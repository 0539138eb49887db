#include "agent/agent_options.h"

#include <cstdio>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "agent/config_file.h"
#include "agent/listen_address.h"
#include "agent/settings.h"

namespace tally::agent {

namespace {

const CLI::Validator kListenAddress(
    [](std::string& value) -> std::string {
      auto a = parse_listen_address(value);
      return a.ok() ? std::string() : a.error().message();
    },
    "IP:PORT");

SinkConfig& default_sink(AgentConfig& c) {
  for (auto& s : c.sinks) {
    if (s.name == "default") return s;
  }
  c.sinks.emplace_back();
  return c.sinks.back();
}

template <typename Config>
Config& target(AgentConfig& c) {
  if constexpr (std::is_same_v<Config, SinkConfig>) {
    return default_sink(c);
  } else {
    return c;
  }
}

// What --help says of a flag: the setting's help, its key and its default.
std::string flag_help(const Setting& setting) {
  const std::string key = setting.table == "sink"
                              ? fmt::format("sink.{}", setting.key)
                              : fmt::format("{}.{}", setting.table, setting.key);
  const std::string fallback = setting_default(setting);
  if (fallback == "\"\"") return fmt::format("{} [{}]", setting.help, key);
  return fmt::format("{} [{}, default {}]", setting.help, key, fallback);
}

// Registers a setting's flag: when given, its value overrides the field.
// The checks are the config file's (settings.h), in CLI11's words.
void add_setting_flag(CLI::App& app, AgentCommandLine& cmd, const Setting& setting) {
  const std::string name(setting.flag);
  const std::string group =
      setting.table == "sink" ? "[[sink]] \"default\"" : fmt::format("[{}]", setting.table);
  std::visit(
      [&](auto member) {
        using Config = typename SettingStruct<decltype(member)>::type;
        using T = std::decay_t<decltype(std::declval<Config&>().*member)>;
        if constexpr (std::is_same_v<T, bool>) {
          // A boolean's flag turns it on (--all).
          app.add_flag_callback(
                 name,
                 [&cmd, member] {
                   cmd.overrides.push_back(
                       [member](AgentConfig& c) { target<Config>(c).*member = true; });
                 },
                 flag_help(setting))
              ->group(group);
        } else {
          using Value = std::conditional_t<std::is_same_v<T, AttachMode>, std::string, T>;
          auto value = std::make_shared<Value>();
          CLI::Option* opt = app.add_option(name, *value, flag_help(setting))->group(group);
          opt->each([&cmd, value, member](const std::string&) {
            cmd.overrides.push_back([value, member](AgentConfig& c) {
              if constexpr (std::is_same_v<T, AttachMode>) {
                target<Config>(c).*member = attach_mode_from_name(*value);
              } else {
                target<Config>(c).*member = *value;
              }
            });
          });
          if constexpr (std::is_same_v<Value, std::string>) {
            if (!setting.choices.empty()) {
              opt->check(CLI::IsMember(
                  std::vector<std::string>(setting.choices.begin(), setting.choices.end())));
            }
            if (setting.listen_address) opt->check(kListenAddress);
          } else {
            opt->check(CLI::Range(static_cast<T>(setting.min), static_cast<T>(setting.max)));
            if (setting.power_of_two) {
              opt->check(CLI::Validator(
                  [&setting](std::string& v) {
                    return power_of_two_problem(setting, std::stoull(v));
                  },
                  "POWER_OF_TWO"));
            }
          }
        }
      },
      setting.field);
}

// Flags that are not settings of the config file.
void add_command_line_flags(CLI::App& app, AgentCommandLine& cmd) {
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

  add_command_line_flags(app, cmd);
  for (const Setting& setting : settings()) {
    if (!setting.flag.empty()) add_setting_flag(app, cmd, setting);
  }

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
