// What a SIGHUP can change in a running tallyd, and what needs a restart.
// Settings that live in the kernel (BPF maps), the outbox file, the sockets,
// the sink threads or the process's privileges are fixed for its life;
// interval, log level and shutdown timeout apply in place.
#pragma once

#include <string>
#include <vector>

#include "agent/agent_config.h"

namespace tally::agent {

// The settings in `next` that differ from `running` and apply only after a
// restart, as the names an operator knows ("[outbox]", "sinks", ...). Built
// on AgentConfig's operator==, so a setting added later is never taken as
// unchanged: one no group names is reported as "other settings".
std::vector<std::string> restart_needed(const AgentConfig& running, const AgentConfig& next);

// `next` with everything but the settings that apply in place taken from
// `running`: what a reload puts into effect.
AgentConfig reloaded(const AgentConfig& running, const AgentConfig& next);

}  // namespace tally::agent
