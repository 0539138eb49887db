#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace tally::test {

namespace {

std::string response(int status, const std::string& reason, const std::string& body,
                     const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
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

FaultProxy::FaultProxy(std::uint16_t upstream_port)
    : upstream_port_(upstream_port), server_("fault proxy", [this](int fd) { serve(fd); }) {}

void FaultProxy::serve(int client) {
  std::string buffer, head, body;
  for (;;) {
    const Mode mode = mode_.load();
    if (mode == Mode::reset_body) {
      // Read the headers and part of the body, then reset.
      if (!read_http_request(client, buffer, head, body, 512)) break;
      ++faulted_;
      reset_connection(client);
      break;
    }
    if (!read_http_request(client, buffer, head, body)) break;
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
}

}  // namespace tally::test
