// Test helper: the `tally` CLI pointed at a test's control socket.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "subprocess.h"

namespace tally::test {

// `tally ARGS --socket SOCKET`, run to completion.
inline RunResult run_tally(const std::string& socket, std::vector<std::string> args,
                           std::chrono::seconds timeout = std::chrono::seconds(120)) {
  std::vector<std::string> argv{TALLY_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--socket");
  argv.push_back(socket);
  return run(argv, timeout);
}

}  // namespace tally::test
