// A minimal HTTP/1.1 server for Prometheus to scrape: GET /metrics answers
// with the page `render` returns; anything else is 404 (405 for other
// methods on /metrics). It runs on the daemon's io_context (Boost.Beast,
// every operation asynchronous), so it never blocks sampling: the page is
// built from in-memory state, requests and responses move only when the
// sockets are ready.
//
// Whoever can reach the address may connect, so everything a connection
// can make tallyd hold is bounded:
// - a request is read into at most kMaxBufferedBytes (header at most
//   kMaxHeaderBytes; chunk extensions and trailers count against the
//   buffer), and has no body; over a limit or malformed, it is answered
//   with 400, 413 or 431 and the connection closed;
// - a request must arrive within kRequestDeadline of connecting (or of the
//   previous answer), and an answer be taken within kWriteDeadline;
// - connections are bounded in total and per remote address
//   (ConnectionTable, kLimits): a new one is always served, the oldest idle
//   connection of the address holding the most being closed to make room;
// - a failing accept (out of descriptors) pauses with backoff, never spins;
// - an exception while rendering the page is a 500, never an abort.
// Not thread-safe: create, use and stop it on the io_context's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "agent/accept_backoff.h"
#include "agent/connection_table.h"
#include "agent/listen_address.h"
#include "tally/result.h"

namespace tally::agent {

class PrometheusExporter {
 public:
  using Render = std::function<std::string()>;

  static constexpr std::uint32_t kMaxHeaderBytes = 8192;
  static constexpr std::size_t kMaxBufferedBytes = 16384;
  static constexpr auto kRequestDeadline = std::chrono::seconds(5);
  static constexpr auto kWriteDeadline = std::chrono::seconds(10);
  static constexpr ConnectionTable::Limits kLimits{64, 16};

  PrometheusExporter(boost::asio::io_context& io, Render render);
  ~PrometheusExporter();
  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  // Binds and starts accepting. The error names the address and the cause.
  Status listen(const ListenAddress& address);
  // "127.0.0.1:41234", with a port 0 resolved.
  std::string listening_on() const;
  // Stops accepting and closes every connection.
  void stop();

  struct Counters {
    std::uint64_t scrapes = 0;
    std::uint64_t connections = 0;       // open now
    std::uint64_t evicted = 0;           // closed to stay within the bounds
    std::uint64_t accept_failures = 0;   // accept() errors (e.g. out of descriptors)
    std::uint64_t requests_refused = 0;  // answered 4xx for being malformed or too large
  };
  Counters counters() const;
  std::uint64_t scrapes() const { return counters().scrapes; }

  // What the sessions share with the exporter; they may outlive it in
  // handlers the io_context still holds.
  struct Shared {
    explicit Shared(Render r) : render(std::move(r)) {}
    Render render;
    ConnectionTable table{"prometheus exporter", kLimits};
    std::uint64_t scrapes = 0;
    std::uint64_t requests_refused = 0;
    bool stopped = false;
  };

 private:
  void do_accept();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_pause_;
  std::shared_ptr<Shared> shared_;
  AcceptBackoff backoff_{"prometheus exporter"};
};

}  // namespace tally::agent
