// tallyd's command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bpf_loader.h"

namespace tally::agent {

struct AgentOptions {
  std::uint32_t interval_s = 60;
  bool to_stdout = false;
  bool once = false;
  bool include_idle = false;
  std::string backend = "auto";  // auto | bpf | procfs
  AttachMode attach = AttachMode::automatic;
  std::uint32_t slots_per_cpu = 1024;
  std::uint32_t max_processes = 16384;
  std::uint32_t exec_cache = 4096;
  std::string log_level = "info";
};

struct AgentCommandLine {
  std::optional<AgentOptions> options;  // empty: exit with exit_code
  int exit_code = 0;
};

// Parses argv. On a bad flag or value prints one line naming it and what is
// accepted, and returns exit code 2; --help prints usage and returns 0.
AgentCommandLine parse_agent_command_line(int argc, char** argv);

}  // namespace tally::agent
