// tallyd's end of the control socket: accepts connections on a Unix socket
// and hands each checked request (control_protocol.h) to the daemon. Runs on
// the daemon's io_context (main thread); a handler may answer later (tally
// flush waits for the shippers) by calling `respond` from that thread.
//
// Hostile clients are expected: everyone with access to the socket (root,
// or the socket's group) may connect. So:
// - a request line is bounded (control::kMaxRequestBytes); a bad request
//   gets an error naming what is wrong, and the connection is closed;
// - a connection idle for kIdleTimeout is closed;
// - connections are bounded in total and per user id (ConnectionTable): a
//   new connection is always served, the oldest idle one of whoever holds
//   the most being closed to make room, so `tally status` answers however
//   many connections someone holds;
// - a failing accept (out of descriptors) pauses with backoff, never spins;
// - an exception from a handler becomes an error reply, never an abort.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/accept_backoff.h"
#include "agent/connection_table.h"
#include "agent/socket_path.h"
#include "control/control_protocol.h"
#include "tally/result.h"

namespace tally::agent {

class ControlSession;

class ControlServer {
 public:
  using Respond = std::function<void(std::string response_line)>;
  using Handler = std::function<void(const control::Request& request, Respond respond)>;

  static constexpr auto kIdleTimeout = std::chrono::seconds(30);
  static constexpr ConnectionTable::Limits kLimits{64, 16};

  ControlServer(boost::asio::io_context& io, Handler handler);
  ~ControlServer();

  // Binds `path` with mode 0600 (0660 and group ownership when `group` is
  // set), after prepare_socket_path(): a stale socket left by a dead tallyd
  // is replaced; a live one, or anything that is not a socket, is an error.
  Status listen(const std::string& path, const std::string& group);
  // Closes the listener and every session; removes the socket file if it is
  // still the one bound.
  void stop();

  const std::string& path() const { return path_; }

  struct Counters {
    std::uint64_t connections = 0;      // open now
    std::uint64_t evicted = 0;          // closed to stay within the bounds
    std::uint64_t accept_failures = 0;  // accept() errors (e.g. out of descriptors)
    std::uint64_t bad_requests = 0;     // refused requests (each named in its reply)
    std::uint64_t handler_errors = 0;   // requests whose handler threw
  };
  Counters counters() const;

 private:
  friend class ControlSession;
  void do_accept();
  void on_accept(const boost::system::error_code& ec,
                 boost::asio::local::stream_protocol::socket socket);

  Handler handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer accept_pause_;
  // Shared with the sessions, which may outlive the server in handlers the
  // io_context still holds.
  std::shared_ptr<ConnectionTable> table_;
  AcceptBackoff backoff_{"control socket"};
  std::string path_;
  BoundSocketFile bound_;
  std::uint64_t bad_requests_ = 0;
  std::uint64_t handler_errors_ = 0;
  bool stopped_ = false;
};

}  // namespace tally::agent
