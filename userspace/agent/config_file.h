// The TOML config file (/etc/tally/tally.toml; every key is documented in
// packaging/tally.toml).
//
// Validation is strict because a typo in a monitoring agent's config is
// otherwise found weeks later: an unknown key, a wrong type or an
// out-of-range value is an error of the form
//   <file>:<line>: <table.key>: <problem> (accepted: <what is accepted>)
#pragma once

#include <string>
#include <string_view>

#include "agent/agent_config.h"
#include "tally/result.h"

namespace tally::agent {

// Parses TOML text; `source` names it in error messages. Keys absent from
// the text keep their value from `base`.
Result<AgentConfig> parse_config(std::string_view text, std::string_view source,
                                 const AgentConfig& base);

// Reads and parses a file. A missing file is an error only if `required`.
Result<AgentConfig> load_config_file(const std::string& path, bool required,
                                     const AgentConfig& base);

}  // namespace tally::agent
