#include "collector/fd_limit.h"

#include <sys/resource.h>

#include <algorithm>

namespace tally::collector {

Result<std::uint64_t> raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return errno_error("read RLIMIT_NOFILE");
  if (limit.rlim_cur != limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      return errno_error("raise RLIMIT_NOFILE's soft limit to the hard limit");
    }
    limit = raised;
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

std::uint64_t reserved_fds(std::uint64_t fd_limit) {
  constexpr std::uint64_t kReserve = 64;  // about three times what start-up opens
  return std::min(kReserve, fd_limit / 2);
}

std::uint64_t connections_for_fd_limit(std::uint64_t fd_limit) {
  return fd_limit - reserved_fds(fd_limit);
}

}  // namespace tally::collector
