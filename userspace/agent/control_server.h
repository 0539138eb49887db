// tallyd's end of the control socket: accepts connections on a Unix socket
// and hands each request line to the daemon. Runs on the daemon's
// io_context (main thread); a handler may answer later (tally flush waits
// for the shippers) by calling `respond` from that thread.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "control_protocol.h"
#include "tally/result.h"

namespace tally::agent {

class ControlSession;

class ControlServer {
 public:
  using Respond = std::function<void(std::string response_line)>;
  using Handler = std::function<void(const control::Request& request, Respond respond)>;

  ControlServer(boost::asio::io_context& io, Handler handler);
  ~ControlServer();

  // Binds `path` with mode 0600 (0660 and group ownership when `group` is
  // set). Creates the parent directory. A stale socket left by a dead tallyd
  // is replaced; a live one is an error ("another tallyd is running").
  Status listen(const std::string& path, const std::string& group);
  // Closes the listener and every session; removes the socket file.
  void stop();

  const std::string& path() const { return path_; }

 private:
  friend class ControlSession;
  void do_accept();

  boost::asio::io_context& io_;
  Handler handler_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::set<std::shared_ptr<ControlSession>> sessions_;
  std::string path_;
  bool stopped_ = false;
};

}  // namespace tally::agent
