// A bearer token kept in a file (a sink's token_file, a Kubernetes service
// account token): its content without the trailing newline.
#pragma once

#include <string>

#include "tally/result.h"

namespace tally::agent {

// "" for an empty path (no token); an error naming the file when it cannot
// be read or holds nothing.
Result<std::string> read_token(const std::string& path);

}  // namespace tally::agent
