#include "raw_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace tally::test {

namespace {

using Clock = std::chrono::steady_clock;

// A socket connected in blocking mode, then made non-blocking: every later
// wait goes through poll() with a deadline.
int finish_connect(int fd, const sockaddr* addr, socklen_t len) {
  if (::connect(fd, addr, len) != 0) {
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

}  // namespace

RawClient RawClient::unix_socket(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return RawClient(-1);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return RawClient(-1);
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return RawClient(finish_connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr));
}

RawClient RawClient::tcp(const std::string& address, const std::string& from_ip) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return RawClient(-1);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  if (::inet_pton(AF_INET, address.substr(0, colon).c_str(), &to.sin_addr) != 1)
    return RawClient(-1);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return RawClient(-1);
  if (!from_ip.empty()) {
    sockaddr_in from{};
    from.sin_family = AF_INET;
    if (::inet_pton(AF_INET, from_ip.c_str(), &from.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      ::close(fd);
      return RawClient(-1);
    }
  }
  return RawClient(finish_connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to));
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), pending_(std::move(other.pending_)) {}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    pending_ = std::move(other.pending_);
  }
  return *this;
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::wait(short events, Clock::time_point deadline) const {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

bool RawClient::send(std::string_view data, std::chrono::milliseconds timeout) {
  return send_repeated(data, data.size(), timeout) == data.size();
}

std::size_t RawClient::send_repeated(std::string_view chunk, std::size_t limit,
                                     std::chrono::milliseconds timeout) {
  if (fd_ < 0 || chunk.empty()) return 0;
  std::size_t sent = 0;
  while (sent < limit) {
    const std::size_t offset = sent % chunk.size();
    const std::size_t n = std::min(chunk.size() - offset, limit - sent);
    const ssize_t rc = ::send(fd_, chunk.data() + offset, n, MSG_NOSIGNAL);
    if (rc > 0) {
      sent += static_cast<std::size_t>(rc);
      continue;
    }
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Stalled: the peer stopped reading. Over if it also said goodbye.
      if (!wait(POLLOUT, Clock::now() + timeout)) return sent;
      continue;
    }
    return sent;  // EPIPE, ECONNRESET: the peer ended the connection
  }
  return sent;
}

void RawClient::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

std::optional<std::string> RawClient::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (const auto nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl + 1);
      pending_.erase(0, nl + 1);
      return line;
    }
    if (!wait(POLLIN, deadline)) return std::nullopt;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return std::nullopt;
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> RawClient::read_to_end(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out = std::exchange(pending_, {});
  for (;;) {
    if (!wait(POLLIN, deadline)) return std::nullopt;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0 && errno == ECONNRESET) return out;  // ended, if abruptly
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace tally::test
