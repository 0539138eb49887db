// From a [[sink]] table to what its Shipper needs: the SinkFormat that
// speaks the server's protocol, and the URL requests go to.
#pragma once

#include <memory>
#include <string>

#include "agent/agent_config.h"
#include "shipping/sink_format.h"
#include "tally/result.h"

namespace tally::agent {

struct SinkIdentity {
  std::string agent_id;  // the outbox's
  std::string host;      // host name in the samples
  std::string host_id;   // /etc/machine-id, may be empty
  std::string version;   // tally's
};

// Fails only for a format name config validation would have refused.
Result<std::unique_ptr<shipping::SinkFormat>> make_sink_format(const SinkConfig& sink,
                                                               const SinkIdentity& id);

// The sink's url, plus ?db=&precision= for influx.
std::string sink_request_url(const SinkConfig& sink);

}  // namespace tally::agent
