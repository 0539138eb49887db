// task_farm: a population of live tasks for the benchmarks to measure on.
//
// Forks --processes children; each runs --threads tasks (its main thread
// plus threads-1 more), all asleep, except that the first --busy children
// wake every --period-ms and burn --burn-us of CPU in their main thread, so
// they show up as active in every interval without loading the machine
// (100 busy tasks at the defaults use about 0.1 of one core).
//
// Prints "ready <pids...>" once every task exists, then lives until its
// stdin closes or it gets SIGTERM/SIGINT, and then kills and reaps every
// child. Children also die with the farm (PR_SET_PDEATHSIG), so a crashed
// benchmark never leaves thousands of tasks behind.
//
//   task_farm --processes 5000 --threads 2 --busy 100
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
  long processes = 50;
  long threads = 2;  // tasks per process, main thread included
  long busy = 1;
  long period_ms = 100;
  long burn_us = 100;
};

std::uint64_t thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

void* sleeper(void*) {
  for (;;) pause();
  return nullptr;
}

[[noreturn]] void child_main(const Options& o, bool busy, int ready_fd, long index) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // comm holds 15 bytes: "farm-busy-" and up to 5 digits.
  const std::string name =
      std::string(busy ? "farm-busy-" : "farm-idle-") + std::to_string(index % 100000);
  prctl(PR_SET_NAME, name.c_str());
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);  // 10,000 threads, little memory
  for (long t = 1; t < o.threads; ++t) {
    pthread_t th;
    if (pthread_create(&th, &attr, sleeper, nullptr) != 0) _exit(3);
  }
  char c = 'r';
  if (write(ready_fd, &c, 1) != 1) _exit(4);
  close(ready_fd);
  if (!busy) sleeper(nullptr);
  const timespec period{o.period_ms / 1000, (o.period_ms % 1000) * 1'000'000L};
  for (;;) {
    nanosleep(&period, nullptr);
    const std::uint64_t until = thread_cpu_ns() + static_cast<std::uint64_t>(o.burn_us) * 1000;
    while (thread_cpu_ns() < until) {
    }
  }
}

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

long arg(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atol(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.processes = arg(argc, argv, "--processes", o.processes);
  o.threads = arg(argc, argv, "--threads", o.threads);
  o.busy = arg(argc, argv, "--busy", o.busy);
  o.period_ms = arg(argc, argv, "--period-ms", o.period_ms);
  o.burn_us = arg(argc, argv, "--burn-us", o.burn_us);

  int ready[2];
  if (pipe(ready) != 0) return 1;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  std::vector<pid_t> children;
  children.reserve(static_cast<std::size_t>(o.processes));
  for (long i = 0; i < o.processes && !g_stop; ++i) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::fprintf(stderr, "task_farm: fork %ld of %ld: %s\n", i, o.processes,
                   std::strerror(errno));
      break;
    }
    if (pid == 0) {
      close(ready[0]);
      child_main(o, i < o.busy, ready[1], i);
    }
    children.push_back(pid);
  }
  close(ready[1]);
  // One byte per child once all its threads exist.
  std::size_t got = 0;
  char buf[4096];
  while (got < children.size() && !g_stop) {
    const ssize_t n = read(ready[0], buf, sizeof buf);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  const bool complete = got == children.size() && static_cast<long>(got) == o.processes;
  if (complete) {
    std::string line = "ready";
    for (pid_t p : children) line += " " + std::to_string(p);
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    // Until stdin closes (the benchmark exits or is killed) or a signal.
    while (!g_stop && read(STDIN_FILENO, buf, sizeof buf) > 0) {
    }
  } else {
    std::fprintf(stderr, "task_farm: only %zu of %ld children started\n", got, o.processes);
  }
  for (pid_t p : children) kill(p, SIGKILL);
  for (pid_t p : children) waitpid(p, nullptr, 0);
  return complete ? 0 : 1;
}
