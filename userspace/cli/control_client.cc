#include "cli/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "control/control_protocol.h"
#include "tally/fd.h"

namespace tally::cli {

namespace {

std::string unreachable_hint(const std::string& path, int err) {
  switch (err) {
    case ENOENT:
      return fmt::format(
          "cannot reach tallyd: no socket at {}. Is tallyd running "
          "(systemctl status tally)? If it listens elsewhere, pass --socket PATH.",
          path);
    case ECONNREFUSED:
      return fmt::format(
          "cannot reach tallyd at {}: connection refused (a stale socket: tallyd "
          "is not running; check systemctl status tally).",
          path);
    case EACCES:
    case EPERM:
      return fmt::format(
          "cannot reach tallyd at {}: permission denied. The socket is for root "
          "(mode 0600); run as root, or start tallyd with --socket-group GROUP "
          "and join that group.",
          path);
    default:
      return fmt::format("cannot reach tallyd at {}: {}", path, std::strerror(err));
  }
}

// Waits for fd to be ready for `events` until deadline; false on timeout.
bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

}  // namespace

Result<nlohmann::json> call(const std::string& socket_path, const std::string& request_line,
                            std::chrono::milliseconds timeout, bool& unreachable) {
  unreachable = false;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno_error("create socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    unreachable = true;
    return Error::format("socket path too long: {}", socket_path);
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    unreachable = true;
    return Error(unreachable_hint(socket_path, errno));
  }

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t sent = 0;
  while (sent < request_line.size()) {
    ssize_t n =
        ::send(fd.get(), request_line.data() + sent, request_line.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(fmt::format("send request to tallyd at {}", socket_path));
    sent += static_cast<std::size_t>(n);
  }

  std::string response;
  char buf[8192];
  while (response.find('\n') == std::string::npos) {
    if (!wait_fd(fd.get(), POLLIN, deadline)) {
      return Error::format("tallyd at {} did not answer within {} s", socket_path,
                           std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
    }
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error(fmt::format("read from tallyd at {}", socket_path));
    if (n == 0)
      return Error::format("tallyd at {} closed the connection without answering", socket_path);
    response.append(buf, static_cast<std::size_t>(n));
    if (response.size() > control::kMaxResponseBytes) {
      return Error::format("response from tallyd at {} is longer than {} bytes", socket_path,
                           control::kMaxResponseBytes);
    }
  }
  return control::parse_response(response.substr(0, response.find('\n')));
}

}  // namespace tally::cli
