// tally-collector's server, in the shape of the Boost.Asio HTTP server
// example: one class owns the io_context, the signal set and the acceptor;
// async starters are do_*; stop() closes and cancels everything, lets
// in-flight requests finish for a grace period, and lets run() return.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "collector/api.h"
#include "collector/collector_options.h"
#include "collector/connection_limiter.h"
#include "collector/http_session.h"
#include "collector/token_reloader.h"
#include "tally/result.h"

namespace tally::collector {

class CollectorServer {
 public:
  // Opens (or creates) the database and binds the listening socket.
  static Result<std::unique_ptr<CollectorServer>> create(const CollectorOptions& options);
  ~CollectorServer();
  CollectorServer(const CollectorServer&) = delete;
  CollectorServer& operator=(const CollectorServer&) = delete;

  // "127.0.0.1:41234": the address actually bound (port 0 resolved).
  std::string listening_on() const;

  // Serves until SIGINT or SIGTERM; then stops accepting, gives in-flight
  // requests the grace period, closes the database. Returns the exit code.
  int run();

 private:
  explicit CollectorServer(const CollectorOptions& options);
  Status open(const CollectorOptions& options);
  Status limit_connections(const CollectorOptions& options);
  void do_accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void do_accept_later();
  void admit(boost::asio::ip::tcp::socket socket);
  void report_refusal(const boost::asio::ip::address& peer, ConnectionLimiter::Refusal why);
  void do_report_refusals();
  void do_wait_signal();
  void stop();

  CollectorOptions options_;
  // Declared before io_ so that they outlive it: sessions still held by
  // queued handlers unregister from them when io_ is destroyed.
  SessionHub hub_;
  std::unique_ptr<ConnectionLimiter> limiter_;
  boost::asio::io_context io_{1};
  boost::asio::signal_set signals_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer grace_timer_;
  boost::asio::steady_timer accept_retry_;
  bool accept_failing_ = false;
  bool accept_pending_ = false;  // an accept or its retry timer is armed
  std::chrono::milliseconds accept_backoff_{0};
  // Refused connections are logged once, then summed up once a minute
  // while refusals go on: an attack must not flood the log.
  boost::asio::steady_timer refusal_report_;
  bool refusals_reported_ = false;
  std::uint64_t refused_since_report_ = 0;
  std::unique_ptr<Api> api_;
  std::unique_ptr<TokenReloader> token_reloader_;  // SIGHUP
};

}  // namespace tally::collector
