// A bearer token kept in a file (a sink's token_file, a Kubernetes service
// account token): its content without the trailing newline.
#pragma once

#include <string>

#include "tally/result.h"

namespace tally::agent {

// "" for an empty path (no token); an error naming the file when it cannot
// be read or holds nothing.
Result<std::string> read_token(const std::string& path);

// HTTP basic auth credentials, base64("user:password"), the password read
// from `password_file` as read_token reads a token.
Result<std::string> read_basic_auth(const std::string& user, const std::string& password_file);

}  // namespace tally::agent
