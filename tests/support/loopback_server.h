// Test helper: the plumbing of the loopback servers the tests stand up in
// their own process (the fault proxy, the OTLP receiver): a TCP listener on
// 127.0.0.1 at a free port, a thread per connection, and a shutdown that
// stops accepting, cuts every open connection and joins every thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace tally::test {

class LoopbackServer {
 public:
  // Runs serve(fd) on a thread of its own for each connection and closes fd
  // when it returns. `what` names the server in errors.
  LoopbackServer(const char* what, std::function<void(int fd)> serve);
  ~LoopbackServer();
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  void accept_loop();
  void run(int fd);

  std::function<void(int)> serve_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> client_fds_;
  std::thread acceptor_;
};

// Sends all of data; false if the peer went away.
bool write_all(int fd, std::string_view data);

// Reads one HTTP/1.1 request: `head` (request line and headers, up to and
// including the blank line) and at most body_limit bytes of its
// Content-Length body. `buffer` keeps bytes read past the request for the
// next one on the connection. False on EOF or error.
bool read_http_request(int fd, std::string& buffer, std::string& head, std::string& body,
                       std::size_t body_limit = SIZE_MAX);

}  // namespace tally::test
