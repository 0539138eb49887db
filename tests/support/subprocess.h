// Test helper: a child process with its stdout captured line by line.
// The destructor kills (SIGKILL) and reaps it if it is still running.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tally::test {

class Subprocess {
 public:
  struct Options {
    bool capture_stdout = true;
    bool capture_stderr = true;  // kept apart from stdout, for messages
    std::string stdin_data;      // written then closed, if not empty
  };

  explicit Subprocess(std::vector<std::string> argv);
  Subprocess(std::vector<std::string> argv, Options options);
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int signo);
  // Waits for exit; returns the exit code (128+signal when killed), or
  // nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  // After exit: waits until all output has been read (pipes closed).
  void join_output();

  // Lines of stdout so far (complete lines only).
  std::vector<std::string> lines() const;
  std::string stderr_text() const;
  // Waits until predicate(line) holds for some stdout line; returns it.
  std::optional<std::string> wait_for_line(const std::function<bool(const std::string&)>& pred,
                                           std::chrono::milliseconds timeout);
  std::optional<std::string> wait_for_stderr(const std::string& needle,
                                             std::chrono::milliseconds timeout);

 private:
  void reader(int fd, bool is_stdout);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::string partial_;
  std::string stderr_;
  std::thread out_thread_;
  std::thread err_thread_;
};

// Runs argv to completion and returns {exit code, stdout, stderr}.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout);

}  // namespace tally::test
