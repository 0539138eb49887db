// The tally CLI's end of the control socket: one request, one response.
#pragma once

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "tally/result.h"

namespace tally::cli {

// Sends `request_line` to the tallyd listening on socket_path and returns the
// result of its response. Errors say which socket was tried and what to
// check; `unreachable` is set when no tallyd could be reached at all.
Result<nlohmann::json> call(const std::string& socket_path, const std::string& request_line,
                            std::chrono::milliseconds timeout, bool& unreachable);

}  // namespace tally::cli
