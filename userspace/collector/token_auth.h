// Bearer-token authentication for the collector's API (RFC 6750 section 2.1).
// The token is a secret: it is never logged or echoed in a response.
#pragma once

#include <string>
#include <string_view>

#include "tally/result.h"

namespace tally::collector {

// Reads the token file; surrounding whitespace (a trailing newline from an
// editor) is not part of the token. An empty token is an error.
Result<std::string> load_token(const std::string& path);

// True when `authorization` is "Bearer <token>" (scheme case-insensitive).
// Takes the same time wherever the presented token differs from the real
// one, so response timing does not reveal a correct prefix.
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace tally::collector
