// Test helper: a client socket that sends exactly the bytes a test gives it
// (hostile ones included) to tallyd's control socket or its HTTP port, and
// reads what comes back, every wait bounded by a deadline.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tally::test {

class RawClient {
 public:
  // Connected to the Unix stream socket at `path`; valid() false if not.
  static RawClient unix_socket(const std::string& path);
  // Connected to "IP:PORT" (IPv4), from `from_ip` if given (another
  // loopback address, to act as another client); valid() false if not.
  static RawClient tcp(const std::string& address, const std::string& from_ip = {});

  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  ~RawClient();

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Sends all of data; false if the peer closed or reset the connection or
  // nothing could be sent for `timeout`.
  bool send(std::string_view data, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends `chunk` again and again until `limit` bytes are sent or the peer
  // ends the connection; returns how many bytes went.
  std::size_t send_repeated(std::string_view chunk, std::size_t limit,
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // No more requests: the peer reads EOF after what was sent.
  void shutdown_write();

  // Everything up to and including the first newline; nullopt if the peer
  // closed first or the timeout passed.
  std::optional<std::string> read_line(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Everything until the peer closes; nullopt if it did not within timeout.
  std::optional<std::string> read_to_end(
      std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  // Waits for `events` on the socket until deadline; false on timeout.
  bool wait(short events, std::chrono::steady_clock::time_point deadline) const;

  int fd_ = -1;
  std::string pending_;  // read past the last line returned
};

}  // namespace tally::test
