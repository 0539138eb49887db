// Making a path safe to bind tallyd's control socket at, and knowing the
// socket is still ours when it is time to remove it.
#pragma once

#include <sys/types.h>

#include <string>

#include "tally/result.h"

namespace tally::agent {

// Prepares `path` for bind():
// - Its directory is created if missing (each missing component 0755).
//   That directory and every one above it must then be owned by root or by
//   tallyd's user, and not writable by group or others unless sticky (like
//   /tmp): otherwise another user could swap the socket, or the directory,
//   for one of their own. The error names the directory and why.
// - At `path` itself there may be nothing, or a stale socket (one nobody
//   accepts connections on: a tallyd that died), which is removed. A socket
//   something accepts on is "another tallyd is running". Anything else (a
//   file, directory, symlink, FIFO, device) is an error naming the path and
//   what is there, and is left alone.
Status prepare_socket_path(const std::string& path);

// The file a socket was bound as, to remove it later only if it is still
// that file (not one a later tallyd put there).
struct BoundSocketFile {
  dev_t device = 0;
  ino_t inode = 0;
};
Result<BoundSocketFile> identify_socket_file(const std::string& path);
// Removes `path` if it is still the socket `bound`; quiet otherwise.
void remove_socket_file(const std::string& path, const BoundSocketFile& bound);

}  // namespace tally::agent
