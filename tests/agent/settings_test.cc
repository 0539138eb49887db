// The settings table (settings.h) is the one source of tallyd's keys and
// flags. These tests hold the places made from it, or written beside it, to
// it: a flag and its key fill the same field and accept the same range, and
// packaging/tally.toml documents every key with its default and its range.
#include "agent/settings.h"

#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/agent_options.h"
#include "agent/config_file.h"

namespace tally::agent {
namespace {

// The field's value in `c`, as the config file would write it.
std::string field_value(const Setting& setting, const AgentConfig& c) {
  return std::visit(
      [&](auto member) -> std::string {
        using Struct = typename SettingStruct<decltype(member)>::type;
        const Struct* from = nullptr;
        if constexpr (std::is_same_v<Struct, SinkConfig>) {
          if (c.sinks.empty()) return "<no sink>";
          from = &c.sinks.front();
        } else {
          from = &c;
        }
        const auto& value = from->*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool>) {
          return value ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return value;
        } else if constexpr (std::is_same_v<T, AttachMode>) {
          return attach_mode_name(value);
        } else {
          return std::to_string(value);
        }
      },
      setting.field);
}

struct FlagResult {
  bool accepted = false;
  AgentConfig config;
};

FlagResult run_flags(std::vector<std::string> args) {
  args.insert(args.begin(), "tallyd");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStderr();
  AgentCommandLine cmd = parse_agent_command_line(static_cast<int>(argv.size()), argv.data());
  testing::internal::GetCapturedStderr();
  FlagResult r;
  r.accepted = cmd.proceed;
  cmd.apply(r.config);
  return r;
}

Result<AgentConfig> run_file(const Setting& setting, const std::string& value) {
  if (setting.table != "sink") {
    return parse_config(fmt::format("[{}]\n{} = {}\n", setting.table, setting.key, value),
                        "test.toml", AgentConfig{});
  }
  // influx is the format that takes every sink key.
  std::string text = "[[sink]]\nurl = \"http://x\"\n";
  if (setting.key != "format") text += "format = \"influx\"\n";
  text += fmt::format("{} = {}\n", setting.key, value);
  return parse_config(text, "test.toml", AgentConfig{});
}

bool is_integer(const Setting& setting) { return setting.max != 0; }

TEST(Settings, EachFlagAndItsKeyFillTheSameFieldWithinTheSameRange) {
  int checked = 0;
  for (const Setting& setting : settings()) {
    if (setting.flag.empty() || !is_integer(setting)) continue;
    SCOPED_TRACE(setting.flag);
    std::uint64_t max = setting.max;
    if (setting.power_of_two) {
      while ((max & (max - 1)) != 0) max &= max - 1;
    }
    for (std::uint64_t accepted : {setting.min, max}) {
      const std::string value = std::to_string(accepted);
      FlagResult flag = run_flags({std::string(setting.flag), value});
      ASSERT_TRUE(flag.accepted) << value;
      EXPECT_EQ(field_value(setting, flag.config), value);
      auto file = run_file(setting, value);
      ASSERT_TRUE(file.ok()) << file.error().message();
      EXPECT_EQ(field_value(setting, *file), value);
    }
    const std::string beyond = std::to_string(setting.max + 1);
    EXPECT_FALSE(run_flags({std::string(setting.flag), beyond}).accepted);
    EXPECT_FALSE(run_file(setting, beyond).ok());
    if (setting.min > 0) {
      const std::string below = std::to_string(setting.min - 1);
      EXPECT_FALSE(run_flags({std::string(setting.flag), below}).accepted);
      EXPECT_FALSE(run_file(setting, below).ok());
    }
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

TEST(Settings, EachChoiceIsAcceptedByTheFlagAndTheKeyAlike) {
  for (const Setting& setting : settings()) {
    if (setting.choices.empty()) continue;
    SCOPED_TRACE(setting.key);
    for (std::string_view choice : setting.choices) {
      const std::string value(choice);
      auto file = run_file(setting, fmt::format("\"{}\"", value));
      ASSERT_TRUE(file.ok()) << file.error().message();
      EXPECT_EQ(field_value(setting, *file), value);
      if (setting.flag.empty()) continue;
      FlagResult flag = run_flags({std::string(setting.flag), value});
      ASSERT_TRUE(flag.accepted) << value;
      EXPECT_EQ(field_value(setting, flag.config), value);
    }
    EXPECT_FALSE(run_file(setting, "\"no-such-choice\"").ok());
    if (!setting.flag.empty()) {
      EXPECT_FALSE(run_flags({std::string(setting.flag), "no-such-choice"}).accepted);
    }
  }
}

// packaging/tally.toml, by table: each line with its comment marker removed.
std::map<std::string, std::string> example_config_by_table() {
  std::ifstream in(EXAMPLE_CONFIG_PATH);
  std::map<std::string, std::string> tables;
  std::string table;
  std::string line;
  while (std::getline(in, line)) {
    while (line.rfind("# ", 0) == 0 || line.rfind("#", 0) == 0)
      line.erase(0, line[1] == ' ' ? 2 : 1);
    if (line.rfind("[[sink]]", 0) == 0) {
      table = "sink";
    } else if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
      table = line.substr(1, line.size() - 2);
    }
    tables[table] += line + ' ';
  }
  return tables;
}

TEST(Settings, TheExampleConfigDocumentsEveryKeyWithItsDefaultAndRange) {
  auto tables = example_config_by_table();
  ASSERT_FALSE(tables.empty()) << EXAMPLE_CONFIG_PATH;
  for (const Setting& setting : settings()) {
    SCOPED_TRACE(fmt::format("{}.{}", setting.table, setting.key));
    const std::string& text = tables[std::string(setting.table)];
    // The example sink shows example values where the default is no use.
    const bool example_value =
        setting.table == "sink" &&
        (setting.key == "name" || setting.key == "url" || setting.key == "token_file");
    const std::string line = example_value
                                 ? fmt::format(" {} = \"", setting.key)
                                 : fmt::format(" {} = {} ", setting.key, setting_default(setting));
    EXPECT_NE((" " + text).find(line), std::string::npos) << "no line '" << line << "'";
    if (is_integer(setting)) {
      const std::string range = fmt::format("{} to {}", setting.min, setting.max);
      EXPECT_NE(text.find(range), std::string::npos) << "the range " << range << " is not said";
    }
  }
}

TEST(Settings, HelpListsEveryFlagWithItsKeyAndDefault) {
  std::vector<std::string> args{"tallyd", "--help"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  testing::internal::CaptureStdout();
  AgentCommandLine cmd = parse_agent_command_line(2, argv.data());
  const std::string help = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(cmd.proceed);
  EXPECT_EQ(cmd.exit_code, 0);
  for (const Setting& setting : settings()) {
    if (setting.flag.empty()) continue;
    EXPECT_NE(help.find(std::string(setting.flag) + " "), std::string::npos) << setting.flag;
    EXPECT_NE(help.find(fmt::format("{}.{}", setting.table, setting.key)), std::string::npos)
        << setting.key;
  }
  EXPECT_NE(help.find("default 60"), std::string::npos) << help;
}

}  // namespace
}  // namespace tally::agent
