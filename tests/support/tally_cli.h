// Test helper: the `tally` CLI pointed at a test's control socket.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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

// `tally status --json`, parsed; a test failure (and a discarded value) if
// it did not print JSON.
inline nlohmann::json tally_status_json(const std::string& socket) {
  const RunResult r = run_tally(socket, {"status", "--json"}, std::chrono::seconds(60));
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "exit " << r.exit_code << ": " << r.out << r.err;
  return j;
}

}  // namespace tally::test
