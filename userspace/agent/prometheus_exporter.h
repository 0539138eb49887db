// A minimal HTTP/1.1 server for Prometheus to scrape: GET /metrics answers
// with the page `render` returns; anything else is 404 (405 for other
// methods on /metrics). It runs on the daemon's io_context (Boost.Beast,
// every operation asynchronous), so it never blocks sampling: the page is
// built from in-memory state, requests and responses move only when the
// sockets are ready, and each connection has a deadline.
// Not thread-safe: create, use and stop it on the io_context's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "listen_address.h"
#include "tally/result.h"

namespace tally::agent {

class PrometheusExporter {
 public:
  using Render = std::function<std::string()>;

  PrometheusExporter(boost::asio::io_context& io, Render render);
  ~PrometheusExporter();
  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  // Binds and starts accepting. The error names the address and the cause.
  Status listen(const ListenAddress& address);
  // "127.0.0.1:41234", with a port 0 resolved.
  std::string listening_on() const;
  // Stops accepting; open connections end at their deadline or when the
  // io_context stops.
  void stop();

  std::uint64_t scrapes() const { return *scrapes_; }

 private:
  void do_accept();

  Render render_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  // Shared with sessions, which may outlive a stop().
  std::shared_ptr<std::uint64_t> scrapes_ = std::make_shared<std::uint64_t>(0);
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
};

}  // namespace tally::agent
