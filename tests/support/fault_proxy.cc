#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace tally::test {

namespace {

bool write_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads one request (headers + Content-Length body). `buffer` keeps bytes
// read past the request for the next one (keep-alive).
bool read_request(int fd, std::string& buffer, std::string& head, std::string& body,
                  std::size_t body_limit = SIZE_MAX) {
  char chunk[65536];
  std::size_t header_end;
  while ((header_end = buffer.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  head = buffer.substr(0, header_end + 4);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  std::size_t length = 0;
  if (auto pos = lower.find("content-length:"); pos != std::string::npos) {
    length = std::stoul(lower.substr(pos + 15));
  }
  buffer.erase(0, header_end + 4);
  const std::size_t want = std::min(length, body_limit);
  while (buffer.size() < want) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  body = buffer.substr(0, want);
  buffer.erase(0, want);
  return true;
}

std::string response(int status, const std::string& reason, const std::string& body,
                     const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Sends the request upstream on a fresh connection and returns the raw
// response (the upstream is told to close, so the response ends at EOF).
bool forward(std::uint16_t port, std::string head, const std::string& body, std::string& out) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return false;
  }
  // Replace keep-alive with close for the upstream leg.
  head.insert(head.size() - 2, "Connection: close\r\n");
  bool ok = write_all(fd, head + body);
  out.clear();
  char chunk[65536];
  while (ok) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return ok && !out.empty();
}

void reset_connection(int fd) {
  linger l{1, 0};  // close with RST
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::shutdown(fd, SHUT_RDWR);
}

}  // namespace

FaultProxy::FaultProxy(std::uint16_t upstream_port) : upstream_port_(upstream_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("fault proxy: bind/listen failed");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() {
  stop_.store(true);
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void FaultProxy::accept_loop() {
  while (!stop_.load()) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stop_.load()) return;
      continue;
    }
    std::lock_guard lock(mu_);
    client_fds_.push_back(client);
    workers_.emplace_back([this, client] { serve(client); });
  }
}

void FaultProxy::serve(int client) {
  std::string buffer, head, body;
  for (;;) {
    const Mode mode = mode_.load();
    if (mode == Mode::reset_body) {
      // Read the headers and part of the body, then reset.
      if (!read_request(client, buffer, head, body, 512)) break;
      ++faulted_;
      reset_connection(client);
      break;
    }
    if (!read_request(client, buffer, head, body)) break;
    std::string reply;
    if (mode == Mode::error_500) {
      ++faulted_;
      reply = response(500, "Internal Server Error", R"({"error":"injected fault"})");
    } else if (mode == Mode::throttle_429) {
      ++faulted_;
      reply = response(429, "Too Many Requests", R"({"error":"slow down"})", "Retry-After: 1\r\n");
    } else if (mode == Mode::reject_400) {
      ++faulted_;
      reply = response(400, "Bad Request", R"({"error":"injected permanent rejection"})");
      if (reject_budget_.fetch_sub(1) <= 1) mode_.store(Mode::pass);
    } else if (mode == Mode::limit_413 && body.size() > size_limit_.load()) {
      ++faulted_;
      reply = response(413, "Payload Too Large", R"({"error":"body too large"})");
    } else {
      if (!forward(upstream_port_.load(), head, body, reply)) {
        // Upstream down: the client sees its connection reset.
        ++faulted_;
        reset_connection(client);
        break;
      }
      ++forwarded_;
      if (mode == Mode::slow) {
        ++faulted_;
        std::this_thread::sleep_for(std::chrono::milliseconds(slow_delay_ms_.load()));
      }
    }
    if (!write_all(client, reply)) break;
    // The forwarded response may say "Connection: close"; honour it.
    if (reply.find("Connection: close") != std::string::npos ||
        reply.find("connection: close") != std::string::npos) {
      break;
    }
  }
  {
    std::lock_guard lock(mu_);
    client_fds_.erase(std::remove(client_fds_.begin(), client_fds_.end(), client),
                      client_fds_.end());
  }
  ::close(client);
}

}  // namespace tally::test
