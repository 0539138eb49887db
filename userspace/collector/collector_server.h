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

#include "api.h"
#include "collector_options.h"
#include "http_session.h"
#include "tally/result.h"
#include "token_reloader.h"

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
  void do_accept();
  void do_wait_signal();
  void stop();

  CollectorOptions options_;
  // Declared before io_ so it outlives it: sessions still held by queued
  // handlers unregister from it when io_ is destroyed.
  SessionHub hub_;
  boost::asio::io_context io_{1};
  boost::asio::signal_set signals_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer grace_timer_;
  boost::asio::steady_timer accept_retry_;
  bool accept_failing_ = false;
  std::unique_ptr<Api> api_;
  std::unique_ptr<TokenReloader> token_reloader_;  // SIGHUP
};

}  // namespace tally::collector
