// tallyd's event loop.
//
// Threads and what they own:
//   main thread  - io_context: signals, the sampling timer, the backend and
//                  sampler (reading counters, naming processes, building
//                  samples). Nothing blocking runs here besides short /proc
//                  reads, so sampling happens on time.
// Deadlines are absolute (start + k * interval) so intervals do not drift.
#pragma once

#include <cstdint>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent_config.h"
#include "backend.h"
#include "sampler.h"

namespace tally::agent {

class Daemon {
 public:
  Daemon(AgentConfig config, std::unique_ptr<accounting::Backend> backend, std::string host);

  // Runs until SIGINT/SIGTERM (or one interval with --once). Returns the
  // process exit code.
  int run();

 private:
  void do_wait_signal();
  void do_wait_interval();
  void on_interval();
  void emit(const accounting::IntervalSamples& samples);
  void stop();

  AgentConfig config_;
  std::unique_ptr<accounting::Backend> backend_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_deadline_;
  accounting::Sampler sampler_;
  bool stopped_ = false;
  int exit_code_ = 0;
};

}  // namespace tally::agent
