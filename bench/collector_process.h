// tally-collector as a child of a benchmark, on a free loopback port.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

extern char** environ;

namespace tally::bench {

// tally-collector as a child; killed and reaped on destruction.
struct Collector {
  pid_t pid = -1;
  std::string listen;
  ~Collector() {
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
};

// Starts `path` on `db`; c.listen is then "127.0.0.1:PORT".
inline bool start_collector(Collector& c, const std::string& path, const std::string& db) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  std::vector<std::string> args = {
      path,
      "--listen",
      "127.0.0.1:0",
      "--db",
      db,
      "--log-level",
      (getenv("TALLY_BENCH_LOG") ? getenv("TALLY_BENCH_LOG") : "warning")};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = posix_spawn(&c.pid, path.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    return false;
  }
  std::string line;
  char ch;
  while (read(out[0], &ch, 1) == 1 && ch != '\n') line.push_back(ch);
  close(out[0]);
  // "listening on 127.0.0.1:PORT, db PATH"
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) != 0) return false;
  c.listen = line.substr(prefix.size(), line.find(',') - prefix.size());
  return true;
}

}  // namespace tally::bench
