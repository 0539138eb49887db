// The agent's identity: a random UUID v4, made once per outbox.
#pragma once

#include <string>

#include "tally/result.h"

namespace tally::queue {

// "xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx" (RFC 4122 section 4.4) from getrandom(2).
Result<std::string> make_agent_id();

}  // namespace tally::queue
