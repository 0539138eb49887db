// tallyd shipping to one sink through the fault-injecting proxy, with every
// line it committed (printed after commit by --stdout) kept across restarts,
// and a burner with a name that needs escaping in every protocol.
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fault_proxy.h"
#include "outbox_file.h"
#include "server_support.h"
#include "tally/time_util.h"
#include "tally_cli.h"
#include "tallyd_run.h"
#include "temp_dir.h"

namespace tally::test {

using namespace std::chrono_literals;

inline void phase(const char* what, std::chrono::seconds how_long) {
  std::printf("[%s for %llds from %llu]\n", what, static_cast<long long>(how_long.count()),
              static_cast<unsigned long long>(realtime_ns()));
  std::fflush(stdout);
  std::this_thread::sleep_for(how_long);
}

// A burner whose command name holds a comma, an equals sign, a space and a
// backslash: the characters the line protocol escapes.
inline constexpr const char* kOddBurnerName = "b,u=r n\\x";

// A config file of [[sink]] tables (each given as its keys), with quick
// timeouts and backoff for tests.
inline std::string write_sink_config(TempDir& dir, const std::vector<std::string>& sinks) {
  const std::string path = dir / "tally.toml";
  std::ofstream out(path);
  for (const auto& s : sinks) {
    out << "[[sink]]\n"
        << s << "timeout = 3\nconnect_timeout = 2\nbackoff_base_ms = 200\n"
        << "backoff_cap = 3\n";
  }
  return path;
}

class SinkSystem {
 public:
  SinkSystem(TempDir& dir, std::uint16_t upstream_port) : dir_(dir), proxy_(upstream_port) {
    odd_burner_ = dir_ / kOddBurnerName;
    std::filesystem::copy_file(BURNER_PATH, odd_burner_);
  }

  FaultProxy& proxy() { return proxy_; }
  std::string proxy_url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(proxy_.port()) + path;
  }

  // With --endpoint, quick timeouts and backoff for it; a --config file
  // sets its sinks' own.
  void start_agent(std::vector<std::string> sink_args) {
    std::vector<std::string> args{"--interval",         "1",        "--outbox",
                                  dir_ / "outbox.db",   "--socket", dir_ / "tally.sock",
                                  "--shutdown-timeout", "20"};
    if (std::find(sink_args.begin(), sink_args.end(), "--endpoint") != sink_args.end()) {
      args.insert(args.end(), {"--timeout", "3", "--connect-timeout", "2", "--backoff-base-ms",
                               "200", "--backoff-cap", "2"});
    }
    args.insert(args.end(), sink_args.begin(), sink_args.end());
    agent_ = std::make_unique<TallydRun>(args);
    ASSERT_TRUE(agent_->wait_ready("control socket")) << agent_->process().stderr_text();
  }

  // A burner with the odd name, burning `ms` of CPU, run to completion.
  void burn_odd(int ms) {
    RunResult r = run({odd_burner_, "burn", std::to_string(ms)}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  RunResult tally(std::vector<std::string> args) { return run_tally(dir_ / "tally.sock", args); }

  nlohmann::json status() {
    auto r = tally({"status", "--json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  }

  // Flushes, stops tallyd (final sample, shipped), and keeps its lines.
  void flush_and_stop() {
    auto flush = tally({"flush", "--timeout", "60"});
    EXPECT_EQ(flush.exit_code, 0) << flush.out << flush.err << "\ntallyd said:\n"
                                  << agent_->process().stderr_text();
    EXPECT_EQ(agent_->stop(), 0) << agent_->process().stderr_text();
    for (const auto& line : agent_->process().lines()) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) committed_.push_back(std::move(j));
    }
    stderr_ = agent_->process().stderr_text();
    agent_.reset();
  }

  // SIGKILL: no flush, no clean close. The lines it printed were committed
  // and are kept; start_agent() starts it again on the same outbox.
  void kill_agent() {
    agent_->process().signal(SIGKILL);
    agent_->process().wait(30s);
    agent_->process().join_output();
    for (const auto& line : agent_->process().lines()) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) committed_.push_back(std::move(j));
    }
    agent_.reset();
  }

  queue::OutboxStats outbox_stats() { return read_outbox_stats(dir_ / "outbox.db"); }

  const std::vector<nlohmann::json>& committed() const { return committed_; }
  const std::string& agent_stderr() const { return stderr_; }

 private:
  TempDir& dir_;
  FaultProxy proxy_;
  std::string odd_burner_;
  std::unique_ptr<TallydRun> agent_;
  std::vector<nlohmann::json> committed_;
  std::string stderr_;
};

}  // namespace tally::test
