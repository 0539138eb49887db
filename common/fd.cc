#include "tally/fd.h"

#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "tally/result.h"

namespace tally {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Error errno_error(std::string_view what, int err) {
  return Error(fmt::format("{}: {}", what, std::strerror(err)));
}

Error errno_error(std::string_view what) { return errno_error(what, errno); }

}  // namespace tally
