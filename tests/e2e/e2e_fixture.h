// An agent shipping through a fault-injecting proxy to a real collector,
// with every line the agent committed (printed after commit by --stdout)
// kept across agent restarts.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <map>
#include <thread>

#include "collector_run.h"
#include "fault_proxy.h"
#include "outbox_file.h"
#include "tally_cli.h"
#include "tallyd_run.h"
#include "temp_dir.h"

namespace tally::test {

using namespace std::chrono_literals;

class ShippingSystem {
 public:
  explicit ShippingSystem(std::vector<std::string> agent_extra = {})
      : collector_(dir_ / "collector.db"),
        proxy_(collector_.port()),
        agent_extra_(std::move(agent_extra)) {}

  ~ShippingSystem() {
    if (agent_) kill_agent();
  }

  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(proxy_.port()) + "/v1/batches";
  }

  void start_agent() {
    std::vector<std::string> args{"--interval",         "1",
                                  "--outbox",           dir_ / "outbox.db",
                                  "--socket",           dir_ / "tally.sock",
                                  "--endpoint",         endpoint(),
                                  "--timeout",          "3",
                                  "--connect-timeout",  "2",
                                  "--backoff-base-ms",  "200",
                                  "--backoff-cap",      "3",
                                  "--shutdown-timeout", "15"};
    // An extra flag the defaults above already give replaces their value.
    for (std::size_t i = 0; i < agent_extra_.size(); ++i) {
      auto it = std::find(args.begin(), args.end(), agent_extra_[i]);
      if (it != args.end() && std::next(it) != args.end() && i + 1 < agent_extra_.size()) {
        *std::next(it) = agent_extra_[++i];
      } else {
        args.push_back(agent_extra_[i]);
      }
    }
    agent_ = std::make_unique<TallydRun>(args);
    ASSERT_TRUE(agent_->wait_ready("control socket")) << agent_->process().stderr_text();
  }

  // Waits for the next interval to be printed, then SIGKILLs: the kill lands
  // between two commits, so every committed line has been printed.
  void kill_agent_between_intervals() {
    const std::size_t hosts = agent_->samples("host").size();
    agent_->process().wait_for_line(
        [&, seen = std::size_t{0}](const std::string& l) mutable {
          if (l.find("\"kind\":\"host\"") != std::string::npos) ++seen;
          return seen > hosts;
        },
        10s);
    kill_agent();
  }

  void kill_agent() {
    agent_->process().signal(SIGKILL);
    agent_->process().wait(10s);
    collect();
  }

  int stop_agent() {
    const int code = agent_->stop();
    collect();
    return code;
  }

  RunResult tally(std::vector<std::string> args) { return run_tally(dir_ / "tally.sock", args); }

  queue::OutboxStats outbox_stats() { return read_outbox_stats(dir_ / "outbox.db"); }
  std::vector<std::string> dead_letters() { return outbox_dead_letters(dir_ / "outbox.db"); }

  // Canonical form (sorted keys) of every line the agent committed.
  const std::vector<std::string>& committed() const { return committed_; }

  std::vector<std::string> stored_samples(std::size_t expect_at_least) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    auto j = collector_.get("/v1/samples?limit=100000&host=" + std::string(host));
    std::vector<std::string> out;
    for (auto& s : j["samples"]) out.push_back(s.dump());
    EXPECT_GE(out.size(), expect_at_least);
    return out;
  }

  nlohmann::json agent_record() {
    auto j = collector_.get("/v1/agents");
    EXPECT_EQ(j["agents"].size(), 1u) << j.dump();
    return j["agents"].empty() ? nlohmann::json::object() : j["agents"][0];
  }

  std::string collector_db() const { return dir_ / "collector.db"; }
  FaultProxy& proxy() { return proxy_; }
  CollectorRun& collector() { return collector_; }
  TallydRun& agent() { return *agent_; }

 private:
  void collect() {
    for (const auto& line : agent_->process().lines()) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) committed_.push_back(j.dump());
    }
    agent_.reset();
  }

  TempDir dir_;
  CollectorRun collector_;
  FaultProxy proxy_;
  std::vector<std::string> agent_extra_;
  std::unique_ptr<TallydRun> agent_;
  std::vector<std::string> committed_;
};

// Multiset difference a - b, for messages.
inline std::vector<std::string> minus(std::vector<std::string> a, std::vector<std::string> b) {
  std::map<std::string, int> count;
  for (auto& s : b) ++count[s];
  std::vector<std::string> out;
  for (auto& s : a) {
    if (count[s] > 0)
      --count[s];
    else
      out.push_back(s);
  }
  return out;
}

}  // namespace tally::test
