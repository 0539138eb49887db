// Runs bench/task_farm from a benchmark: starts it, waits for "ready", and
// on destruction closes its stdin so it kills and reaps its children (they
// also die with it if this process is killed: PR_SET_PDEATHSIG).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "tally/result.h"

namespace tally::bench {

class TaskFarmRun {
 public:
  // tasks live tasks in processes of threads_per_process tasks each; busy of
  // them (main threads) wake periodically to burn a little CPU.
  static Result<TaskFarmRun> start(const std::string& farm_path, long tasks,
                                   long threads_per_process, long busy) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return errno_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    const long processes = (tasks + threads_per_process - 1) / threads_per_process;
    std::vector<std::string> args = {farm_path,
                                     "--processes",
                                     std::to_string(processes),
                                     "--threads",
                                     std::to_string(threads_per_process),
                                     "--busy",
                                     std::to_string(busy)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, farm_path.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
      close(in[1]);
      close(out[0]);
      return errno_error("spawn " + farm_path, rc);
    }
    TaskFarmRun run(pid, in[1]);
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    close(out[0]);
    if (line.rfind("ready", 0) != 0) {
      return Error::format("task_farm with {} tasks did not start (see its stderr)", tasks);
    }
    return run;
  }

  TaskFarmRun(TaskFarmRun&& o) noexcept : pid_(o.pid_), stdin_(o.stdin_) {
    o.pid_ = -1;
    o.stdin_ = -1;
  }
  TaskFarmRun& operator=(TaskFarmRun&&) = delete;
  ~TaskFarmRun() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }

 private:
  TaskFarmRun(pid_t pid, int stdin_fd) : pid_(pid), stdin_(stdin_fd) {}
  pid_t pid_;
  int stdin_;
};

}  // namespace tally::bench
