#include "agent/socket_path.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "tally/fd.h"

namespace tally::agent {

namespace {

namespace fs = std::filesystem;

const char* what_is(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a file of unknown type";
}

// mkdir of each missing component of `dir`, mode 0755 (less under the
// umask). An existing component is left as it is: the checks come after.
Status make_missing_directories(const fs::path& dir) {
  fs::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (::mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
      return errno_error(fmt::format("create control socket directory {}", partial.string()));
    }
  }
  return ok_status();
}

// Every directory from `dir` up to / must be one only root or tallyd's user
// can change entries of.
Status check_directory_chain(const fs::path& dir) {
  std::unique_ptr<char, decltype(&::free)> real(::realpath(dir.c_str(), nullptr), &::free);
  if (!real) return errno_error(fmt::format("resolve control socket directory {}", dir.string()));
  const uid_t me = ::geteuid();
  for (fs::path p = real.get();; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      return errno_error(fmt::format("inspect control socket directory {}", p.string()));
    }
    if (!S_ISDIR(st.st_mode)) {
      return Error::format("control socket directory {} is {}, not a directory", p.string(),
                           what_is(st.st_mode));
    }
    if (st.st_uid != 0 && st.st_uid != me) {
      return Error::format(
          "control socket directory {} (for {}) is owned by uid {}, not by root "
          "or tallyd's user: that user could replace the socket; choose a "
          "directory only root can change",
          p.string(), dir.string(), st.st_uid);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
      return Error::format(
          "control socket directory {} (for {}) is writable by {} (mode {:04o}) "
          "and not sticky: others could replace the socket; choose a directory "
          "only root can change",
          p.string(), dir.string(), (st.st_mode & S_IWOTH) != 0 ? "everyone" : "its group",
          st.st_mode & 07777);
    }
    if (p == p.parent_path()) return ok_status();
  }
}

enum class Liveness { live, stale };

// Whether something accepts connections on the socket at `path`. The
// connect is non-blocking: a live tallyd with a full backlog (EAGAIN) must
// not hang this one's start.
Result<Liveness> probe(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return errno_error("create a socket to probe the control socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Error::format("control socket path {} is longer than {} bytes", path,
                         sizeof addr.sun_path - 1);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return Liveness::live;
  }
  switch (errno) {
    case EAGAIN:
    case EINPROGRESS:
      return Liveness::live;
    case ECONNREFUSED:
      return Liveness::stale;
    default:
      return errno_error(fmt::format("find out whether control socket {} is in use", path));
  }
}

}  // namespace

Status prepare_socket_path(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  const fs::path dir = parent.empty() ? fs::path(".") : parent;
  if (auto st = make_missing_directories(dir); !st.ok()) return st;
  if (auto st = check_directory_chain(dir); !st.ok()) return st;

  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return ok_status();
    return errno_error(fmt::format("inspect control socket path {}", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error::format(
        "control socket path {} is {}, not a socket; tallyd replaces only a "
        "stale socket: move it away or give another --socket",
        path, what_is(st.st_mode));
  }
  auto liveness = probe(path);
  if (!liveness.ok()) return liveness.error();
  if (*liveness == Liveness::live) {
    return Error::format(
        "control socket {} is in use: another tallyd is running (stop it, or "
        "give this one --socket)",
        path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {  // stale socket of a tallyd that died
    return errno_error(fmt::format("remove stale control socket {}", path));
  }
  return ok_status();
}

Result<BoundSocketFile> identify_socket_file(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return errno_error(fmt::format("inspect control socket {}", path));
  return BoundSocketFile{st.st_dev, st.st_ino};
}

void remove_socket_file(const std::string& path, const BoundSocketFile& bound) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode) || st.st_dev != bound.device || st.st_ino != bound.inode) return;
  ::unlink(path.c_str());
}

}  // namespace tally::agent
