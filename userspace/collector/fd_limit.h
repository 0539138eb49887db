// The file descriptor budget of tally-collector: every connection costs one,
// so the default connection cap is derived from RLIMIT_NOFILE.
#pragma once

#include <cstdint>

#include "tally/result.h"

namespace tally::collector {

// Raises RLIMIT_NOFILE's soft limit to the hard limit (the soft one is often
// 1,024 while the hard one allows far more: nothing to gain by staying low)
// and returns the soft limit now in force.
Result<std::uint64_t> raise_fd_limit();

// Descriptors kept back from connections for the database files (database,
// WAL and shared memory, for each of three connections), the listening
// socket, the event loop and the logs.
std::uint64_t reserved_fds(std::uint64_t fd_limit);

// The largest connection cap that `fd_limit` descriptors can serve.
std::uint64_t connections_for_fd_limit(std::uint64_t fd_limit);

}  // namespace tally::collector
