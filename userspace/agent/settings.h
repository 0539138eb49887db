// Every setting of tallyd in one table: its key in the config file, its flag,
// what it accepts, its help and the field it fills. The config file reader
// (config_file.cc), the flags and --help (agent_options.cc) are all made from
// this table, so a key and its flag cannot accept different things, and a
// new setting is one row here plus its field in agent_config.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "agent/agent_config.h"

namespace tally::agent {

// The field a setting fills: a member of AgentConfig, or of SinkConfig (the
// flags fill the sink named "default").
using SettingField =
    std::variant<std::uint32_t AgentConfig::*, std::uint64_t AgentConfig::*, bool AgentConfig::*,
                 std::string AgentConfig::*, AttachMode AgentConfig::*, std::uint32_t SinkConfig::*,
                 int SinkConfig::*, bool SinkConfig::*, std::string SinkConfig::*,
                 double SinkConfig::*>;

// SettingStruct<decltype(member)>::type: AgentConfig or SinkConfig.
template <typename Member>
struct SettingStruct;
template <typename T, typename C>
struct SettingStruct<T C::*> {
  using type = C;
};

struct Setting {
  std::string_view table;  // agent, bpf, outbox, prometheus, or sink ([[sink]])
  std::string_view key;
  std::string_view flag{};  // empty: config file only
  std::string_view help;    // one line, without range or default (both are added)
  SettingField field;
  // Integers: the accepted range.
  std::uint64_t min = 0;
  std::uint64_t max = 0;
  bool power_of_two = false;
  // Strings: the accepted values (empty: any), or an IP:PORT to listen on.
  std::vector<std::string_view> choices{};
  bool listen_address = false;
};

// In the order the config file reads them, which is the order its "unknown
// key (accepted: ...)" errors list them.
const std::vector<Setting>& settings();

// The tables of the config file besides [[sink]], in order.
const std::vector<std::string_view>& setting_tables();

// A setting's default, as it would be written in the config file
// (60, "auto", true).
std::string setting_default(const Setting& setting);

// "" when `value` is a power of two within the setting's range; else the
// problem, e.g. "must be a power of two (64 to 65536)".
std::string power_of_two_problem(const Setting& setting, std::uint64_t value);

AttachMode attach_mode_from_name(std::string_view name);

}  // namespace tally::agent
