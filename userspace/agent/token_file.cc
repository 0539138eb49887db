#include "agent/token_file.h"

#include <fmt/format.h>

#include "accounting/procfs.h"

namespace tally::agent {

Result<std::string> read_token(const std::string& path) {
  if (path.empty()) return std::string();
  std::string token;
  if (!accounting::procfs::read_small_file(path.c_str(), token)) {
    return errno_error(fmt::format("read token file {}", path));
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty()) return Error::format("token file {} is empty", path);
  return token;
}

}  // namespace tally::agent
