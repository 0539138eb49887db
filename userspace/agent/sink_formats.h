// From a [[sink]] table to what its Shipper needs: the SinkFormat that
// speaks the server's protocol, and the URL requests go to.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "agent/agent_config.h"
#include "shipping/interval_rollup.h"
#include "shipping/sink_format.h"
#include "tally/result.h"

namespace tally::agent {

struct SinkIdentity {
  std::string agent_id;  // the outbox's
  std::string host;      // host name in the samples
  std::string host_id;   // /etc/machine-id, may be empty
  std::string version;   // tally's
  // Where a format that keeps sums across restarts (remote_write) keeps them.
  std::filesystem::path state_path;
};

// Fails for a format name config validation would have refused, or a
// [[group]] pattern that does not compile.
Result<std::unique_ptr<shipping::SinkFormat>> make_sink_format(
    const SinkConfig& sink, const SinkIdentity& id, const std::vector<GroupConfig>& groups = {});

// The [[group]] tables as rules; the error names the rule that does not compile.
Result<shipping::GroupMatcher> compile_groups(const std::vector<GroupConfig>& groups);

// The rollup settings of a time-series sink.
shipping::RollupOptions rollup_options(const SinkConfig& sink);

// The remote write sink's counter file: beside the outbox, named by sink.
std::filesystem::path sink_state_path(const std::string& outbox_path, const std::string& sink);

// The sink's url, plus ?db=&precision= for influx.
std::string sink_request_url(const SinkConfig& sink);

}  // namespace tally::agent
