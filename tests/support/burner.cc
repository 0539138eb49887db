// tally_test_burner: workloads of known CPU time for the accuracy tests.
//
// Every mode measures its own CPU time from the kernel's per-task runtime
// (se.sum_exec_runtime: the first field of /proc/thread-self/schedstat) -
// the truth tally must match - and prints one JSON line before exiting.
// The final figures come from CLOCK_{THREAD,PROCESS}_CPUTIME_ID, which read
// the same counter brought up to date: schedstat's copy is only refreshed at
// ticks and switches, so it lags the running thread by up to a tick.
// Modes:
//   burn MS            one thread burns MS ms of CPU
//                      {"pid":P,"cpu_ns":N}
//   threads N MS       N threads burn MS ms each; one process line expected
//                      {"pid":P,"cpu_ns":N}
//   children N MS      forks N children one after another, each burns MS ms
//                      and exits; {"children":[{"pid":P,"cpu_ns":N},...]}
//   reuse MS           two children with the same pid (via ns_last_pid, root)
//                      {"children":[...]} with both, or {"error":...}
//   contend N MS CPU   forks N children pinned to CPU, each spinning for MS ms
//                      of wall time, so they queue for that CPU; the parent
//                      reads each dead child's schedstat before reaping it:
//                      {"children":[{"pid":P,"cpu_ns":N,"wait_ns":W},...]}
//                      (wait_ns: run_delay, the kernel's run-queue wait)
//   spin SECONDS       a busy loop that never yields, then exits
//   idle SECONDS       sleeps (a live process with no CPU)
//   named NAME S [ARG...]  sets its comm to NAME (prctl PR_SET_NAME, any
//                      bytes: escape sequences too), then spins S seconds;
//                      the ARGs only make its cmdline
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

unsigned long long clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<unsigned long long>(ts.tv_sec) * 1000000000ULL +
         static_cast<unsigned long long>(ts.tv_nsec);
}

// Whole process, dead threads included.
unsigned long long process_cpu_ns() { return clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

unsigned long long own_runtime_ns() {
  char buf[128] = {};
  int fd = open("/proc/thread-self/schedstat", O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  return std::strtoull(buf, nullptr, 10);
}

// Burns until this thread's own runtime grew by ms, then returns the
// thread's total runtime.
unsigned long long burn(long ms) {
  const unsigned long long target =
      own_runtime_ns() + static_cast<unsigned long long>(ms) * 1000000ULL;
  volatile unsigned long long x = 0;
  unsigned long long now = 0;
  while ((now = own_runtime_ns()) < target) {
    for (int i = 0; i < 20000; ++i) x = x + static_cast<unsigned long long>(i);
  }
  return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

struct Child {
  pid_t pid;
  unsigned long long cpu_ns;
};

// Forks a child that burns ms and exits. Its CPU time comes from wait4():
// the kernel's total for the dead child (sum_exec_runtime, split into user
// and system), which includes the exit path a child cannot measure itself.
Child run_child(long ms) {
  pid_t pid = fork();
  if (pid == 0) {
    burn(ms);
    _exit(0);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid) return {-1, 0};
  auto us = [](const timeval& tv) {
    return static_cast<unsigned long long>(tv.tv_sec) * 1000000ULL +
           static_cast<unsigned long long>(tv.tv_usec);
  };
  return {pid, (us(ru.ru_utime) + us(ru.ru_stime)) * 1000ULL};
}

void print_children(const std::vector<Child>& children) {
  std::string out = "{\"children\":[";
  for (size_t i = 0; i < children.size(); ++i) {
    if (i) out += ',';
    out += "{\"pid\":" + std::to_string(children[i].pid) +
           ",\"cpu_ns\":" + std::to_string(children[i].cpu_ns) + "}";
  }
  out += "]}\n";
  fputs(out.c_str(), stdout);
}

// Children pinned to one CPU that spin for ms of wall time each. Their
// final run time and run-queue wait are read from /proc/PID/schedstat while
// they are zombies (waitid WNOWAIT): the kernel's totals after their last
// switch, which is what tally's exit records hold too.
std::string contend(int n, long ms, int cpu) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      if (sched_setaffinity(0, sizeof set, &set) != 0) _exit(3);
      const unsigned long long end =
          clock_ns(CLOCK_MONOTONIC) + static_cast<unsigned long long>(ms) * 1000000ULL;
      volatile unsigned long long x = 0;
      while (clock_ns(CLOCK_MONOTONIC) < end) {
        for (int j = 0; j < 20000; ++j) x = x + static_cast<unsigned long long>(j);
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  std::string out = "{\"children\":[";
  for (std::size_t i = 0; i < pids.size(); ++i) {
    siginfo_t info{};
    waitid(P_PID, static_cast<id_t>(pids[i]), &info, WEXITED | WNOWAIT);
    unsigned long long run = 0, wait = 0;
    const std::string path = "/proc/" + std::to_string(pids[i]) + "/schedstat";
    if (FILE* f = fopen(path.c_str(), "r")) {
      if (fscanf(f, "%llu %llu", &run, &wait) != 2) run = wait = 0;
      fclose(f);
    }
    waitpid(pids[i], nullptr, 0);
    if (i) out += ',';
    out += "{\"pid\":" + std::to_string(pids[i]) + ",\"cpu_ns\":" + std::to_string(run) +
           ",\"wait_ns\":" + std::to_string(wait) + "}";
  }
  return out + "]}\n";
}

int usage() {
  fputs(
      "usage: tally_test_burner burn MS | threads N MS | children N MS | reuse MS | "
      "contend N MS CPU | spin S | idle S | named NAME S [ARG...]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  if (mode == "burn") {
    burn(std::atol(argv[2]));
    printf("{\"pid\":%d,\"cpu_ns\":%llu}\n", getpid(), process_cpu_ns());
  } else if (mode == "threads" && argc >= 4) {
    const int n = std::atoi(argv[2]);
    const long ms = std::atol(argv[3]);
    std::vector<unsigned long long> totals(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&totals, i, ms] { totals[static_cast<size_t>(i)] = burn(ms); });
    }
    for (auto& t : threads) t.join();
    printf("{\"pid\":%d,\"cpu_ns\":%llu}\n", getpid(), process_cpu_ns());
  } else if (mode == "children" && argc >= 4) {
    const int n = std::atoi(argv[2]);
    const long ms = std::atol(argv[3]);
    std::vector<Child> children;
    for (int i = 0; i < n; ++i) children.push_back(run_child(ms));
    print_children(children);
  } else if (mode == "contend" && argc >= 5) {
    fputs(contend(std::atoi(argv[2]), std::atol(argv[3]), std::atoi(argv[4])).c_str(), stdout);
  } else if (mode == "reuse") {
    const long ms = std::atol(argv[2]);
    Child first = run_child(ms);
    // Ask the kernel to hand out first.pid again for the next fork.
    for (int attempt = 0; attempt < 50; ++attempt) {
      int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
      if (fd < 0) {
        printf("{\"error\":\"open ns_last_pid: %s\"}\n", strerror(errno));
        return 1;
      }
      std::string v = std::to_string(first.pid - 1);
      ssize_t ignored = write(fd, v.data(), v.size());
      (void)ignored;
      close(fd);
      Child second = run_child(ms);
      if (second.pid == first.pid) {
        print_children({first, second});
        return 0;
      }
    }
    puts("{\"error\":\"pid was not reused\"}");
    return 1;
  } else if (mode == "spin" || (mode == "named" && argc >= 4)) {
    if (mode == "named") {
      prctl(PR_SET_NAME, argv[2], 0, 0, 0);
      ++argv;  // SECONDS is next
    }
    const unsigned long long end =
        own_runtime_ns() + std::strtoull(argv[2], nullptr, 10) * 1000000000ULL;
    volatile unsigned long long x = 0;
    for (;;) {
      for (int i = 0; i < 1000000; ++i) x = x + static_cast<unsigned long long>(i);
      if (own_runtime_ns() >= end) break;
    }
    printf("{\"pid\":%d,\"cpu_ns\":%llu}\n", getpid(), process_cpu_ns());
  } else if (mode == "idle") {
    sleep(static_cast<unsigned>(std::atoi(argv[2])));
  } else {
    return usage();
  }
  fflush(stdout);
  return 0;
}
