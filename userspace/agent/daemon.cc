#include "daemon.h"

#include <csignal>
#include <cstdio>

#include "tally/log.h"
#include "tally/time_util.h"

namespace tally::agent {

Daemon::Daemon(AgentConfig config, std::unique_ptr<accounting::Backend> backend, std::string host)
    : config_(std::move(config)),
      backend_(std::move(backend)),
      signals_(io_, SIGINT, SIGTERM),
      timer_(io_),
      next_deadline_(std::chrono::steady_clock::now()),
      sampler_(*backend_, accounting::SamplerOptions{std::move(host), config_.include_idle},
               monotonic_ns()) {}

int Daemon::run() {
  do_wait_signal();
  do_wait_interval();
  io_.run();
  return exit_code_;
}

void Daemon::do_wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec || stopped_) return;
    log::info("received {}, taking a final sample and stopping", strsignal(signo));
    on_interval();
    stop();
  });
}

void Daemon::do_wait_interval() {
  next_deadline_ += std::chrono::seconds(config_.interval_s);
  timer_.expires_at(next_deadline_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    on_interval();
    if (config_.once) {
      stop();
      return;
    }
    do_wait_interval();
  });
}

void Daemon::on_interval() {
  auto samples = sampler_.sample();
  if (!samples.ok()) {
    // A failed read loses nothing: counters are cumulative, and the next
    // interval reports the time since the last successful one.
    log::warning("{}", samples.error().message());
    return;
  }
  emit(*samples);
}

void Daemon::emit(const accounting::IntervalSamples& samples) {
  if (!config_.to_stdout) return;
  std::string out;
  for (const std::string& line : samples.lines()) {
    out += line;
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

void Daemon::stop() {
  stopped_ = true;
  timer_.cancel();
  signals_.cancel();
}

}  // namespace tally::agent
