// Test helpers for running real servers on loopback: a free port, URL
// encoding, gunzip, and a server process that is started, probed until ready, and
// stopped (SIGTERM) at the end, restartable on the same port and data.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http_get.h"
#include "subprocess.h"

namespace tally::test {

// A port that was free a moment ago (bound to 127.0.0.1:0, then closed).
std::uint16_t free_port();

std::string url_encode(const std::string& text);
std::string gunzip(const std::string& data);

// The program's path on PATH, or "" (the caller fails the test and says
// that scripts/bootstrap installs it).
std::string find_program(const std::string& name);

class ServerRun {
 public:
  // ready_url answers 2xx once the server serves.
  ServerRun(std::string name, std::vector<std::string> argv, std::string ready_url);
  ~ServerRun();

  // Starts and waits (up to 60 s) for ready_url; false with the server's
  // stderr in error() if it did not come up.
  bool start();
  void stop(int signo = 15);
  bool running() const { return proc_ != nullptr; }
  const std::string& error() const { return error_; }

 private:
  std::string name_;
  std::vector<std::string> argv_;
  std::string ready_url_;
  std::unique_ptr<Subprocess> proc_;
  std::string error_;
};

}  // namespace tally::test
