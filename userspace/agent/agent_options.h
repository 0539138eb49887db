// tallyd's command line. Flags override the config file's keys; the
// overrides are kept so that a SIGHUP reload of the file does not undo them.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "tally/result.h"

namespace tally::agent {

struct AgentCommandLine {
  std::string config_path = "/etc/tally/tally.toml";
  bool config_path_given = false;  // then the file must exist
  bool check_config = false;
  // Applies every flag that was given on top of a config.
  std::vector<std::function<void(AgentConfig&)>> overrides;

  int exit_code = 0;  // meaningful when `proceed` is false
  bool proceed = false;

  void apply(AgentConfig& config) const {
    for (const auto& f : overrides) f(config);
  }
};

// Parses argv. A bad flag or value prints one line naming it and what is
// accepted and yields exit code 2; --help prints usage and yields 0.
AgentCommandLine parse_agent_command_line(int argc, char** argv);

// Reads the config file, then applies the flags.
Result<AgentConfig> resolve_config(const AgentCommandLine& cmd);

}  // namespace tally::agent
