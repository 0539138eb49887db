// SIGHUP applies interval, log level and shutdown timeout in place and names
// everything else that changed as needing a restart, including settings no
// group lists (before, a sink field missing from a hand-written comparison
// counted as unchanged).
#include "agent/restart_needed.h"

#include <functional>

#include <gtest/gtest.h>

namespace tally::agent {
namespace {

using Names = std::vector<std::string>;

AgentConfig with_sink() {
  AgentConfig c;
  c.sinks.push_back(SinkConfig{});
  c.sinks[0].url = "http://collector:8080/v1/batches";
  return c;
}

TEST(RestartNeeded, SettingsThatApplyInPlaceNeedNoRestartAndAreApplied) {
  const AgentConfig running = with_sink();
  AgentConfig next = running;
  next.interval_s = 5;
  next.log_level = "debug";
  next.shutdown_timeout_s = 60;
  EXPECT_EQ(restart_needed(running, next), Names{});
  const AgentConfig applied = reloaded(running, next);
  EXPECT_EQ(applied, next);
}

TEST(RestartNeeded, EachGroupIsNamedAndItsSettingsAreNotApplied) {
  const AgentConfig running = with_sink();
  const std::vector<std::pair<std::function<void(AgentConfig&)>, Names>> cases = {
      {[](AgentConfig& c) { c.backend = "procfs"; }, {"backend"}},
      {[](AgentConfig& c) { c.attach = AttachMode::raw_tp; }, {"backend"}},
      {[](AgentConfig& c) { c.max_processes = 1; }, {"[bpf]"}},
      {[](AgentConfig& c) { c.batch_max_age_s = 9; }, {"[outbox]"}},
      {[](AgentConfig& c) { c.include_idle = true; }, {"include_idle"}},
      {[](AgentConfig& c) { c.max_cmdline_bytes = 64; }, {"max_cmdline_bytes"}},
      {[](AgentConfig& c) { c.drop_privileges = false; }, {"drop_privileges"}},
      {[](AgentConfig& c) { c.socket_group = "adm"; }, {"socket"}},
      {[](AgentConfig& c) { c.prometheus_top = 3; }, {"[prometheus]"}},
      {[](AgentConfig& c) { c.sinks.emplace_back(); }, {"sinks"}},
      {[](AgentConfig& c) {
         c.outbox_cap_mib = 1;
         c.interval_s = 1;
         c.prometheus_listen = "127.0.0.1:9";
       },
       {"[outbox]", "[prometheus]"}},
      // Command-line settings belong to no group: still never "unchanged".
      {[](AgentConfig& c) { c.to_stdout = true; }, {"other settings"}},
  };
  for (const auto& [change, expected] : cases) {
    AgentConfig next = running;
    change(next);
    EXPECT_EQ(restart_needed(running, next), expected);
    AgentConfig applied = reloaded(running, next);
    applied.interval_s = running.interval_s;
    EXPECT_EQ(applied, running) << expected[0] << " was applied in place";
  }
}

TEST(RestartNeeded, EverySinkFieldCounts) {
  const AgentConfig running = with_sink();
  const std::vector<std::function<void(SinkConfig&)>> changes = {
      [](SinkConfig& s) { s.name = "b"; },
      [](SinkConfig& s) { s.format = "influx"; },
      [](SinkConfig& s) { s.url = "http://other/"; },
      [](SinkConfig& s) { s.token_file = "/t"; },
      [](SinkConfig& s) { s.ca_file = "/ca"; },
      [](SinkConfig& s) { s.connect_timeout_s = 1; },
      [](SinkConfig& s) { s.timeout_s = 1; },
      [](SinkConfig& s) { s.backoff_base_ms = 1; },
      [](SinkConfig& s) { s.backoff_cap_s = 1; },
      [](SinkConfig& s) { s.gzip_level = 1; },
      [](SinkConfig& s) { s.database = "db"; },
      [](SinkConfig& s) { s.precision = "s"; },
      [](SinkConfig& s) { s.cmdline = true; },
  };
  for (std::size_t i = 0; i < changes.size(); ++i) {
    AgentConfig next = running;
    changes[i](next.sinks[0]);
    EXPECT_EQ(restart_needed(running, next), Names{"sinks"}) << "change " << i;
  }
}

}  // namespace
}  // namespace tally::agent
