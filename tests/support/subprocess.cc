#include "subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace tally::test {

Subprocess::Subprocess(std::vector<std::string> argv) : Subprocess(std::move(argv), Options{}) {}

Subprocess::Subprocess(std::vector<std::string> argv, Options options) {
  int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe");
  }
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork");
  if (pid_ == 0) {
    dup2(in[0], 0);
    if (options.capture_stdout) dup2(out[1], 1);
    if (options.capture_stderr) dup2(err[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  close(in[0]);
  if (!options.stdin_data.empty()) {
    ssize_t ignored = write(in[1], options.stdin_data.data(), options.stdin_data.size());
    (void)ignored;
  }
  close(in[1]);
  out_thread_ = std::thread([this, fd = out[0]] { reader(fd, true); });
  err_thread_ = std::thread([this, fd = err[0]] { reader(fd, false); });
}

Subprocess::~Subprocess() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
}

void Subprocess::reader(int fd, bool is_stdout) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard lock(mu_);
    if (!is_stdout) {
      stderr_.append(buf, static_cast<size_t>(n));
    } else {
      partial_.append(buf, static_cast<size_t>(n));
      size_t pos;
      while ((pos = partial_.find('\n')) != std::string::npos) {
        lines_.push_back(partial_.substr(0, pos));
        partial_.erase(0, pos + 1);
      }
    }
    cv_.notify_all();
  }
  close(fd);
}

void Subprocess::join_output() {
  if (out_thread_.joinable()) out_thread_.join();
  if (err_thread_.joinable()) err_thread_.join();
}

void Subprocess::signal(int signo) {
  if (!exit_code_) ::kill(pid_, signo);
}

std::optional<int> Subprocess::wait(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<std::string> Subprocess::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

std::string Subprocess::stderr_text() const {
  std::lock_guard lock(mu_);
  return stderr_;
}

std::optional<std::string> Subprocess::wait_for_line(
    const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  size_t checked = 0;
  std::optional<std::string> found;
  cv_.wait_for(lock, timeout, [&] {
    for (; checked < lines_.size(); ++checked) {
      if (pred(lines_[checked])) {
        found = lines_[checked];
        return true;
      }
    }
    return false;
  });
  return found;
}

std::optional<std::string> Subprocess::wait_for_stderr(const std::string& needle,
                                                       std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (cv_.wait_for(lock, timeout, [&] { return stderr_.find(needle) != std::string::npos; })) {
    return stderr_;
  }
  return std::nullopt;
}

RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  Subprocess p(std::move(argv));
  RunResult r;
  auto code = p.wait(timeout);
  r.exit_code = code.value_or(-1);
  if (!code) p.signal(SIGKILL);
  p.wait(std::chrono::seconds(5));
  p.join_output();
  for (auto& l : p.lines()) r.out += l + "\n";
  r.err = p.stderr_text();
  return r;
}

}  // namespace tally::test
