// One HTTP/1.1 connection: reads requests one at a time (keep-alive),
// hands each to the Api, writes the response, and enforces the limits and
// timeouts of docs/protocol.md.
//
// Every byte the parser holds sits in one buffer capped at kMaxBuffered
// (http_framing.h), and the session feeds the parser itself rather than
// through http::async_read, so that whatever the parser throws can still be
// answered (a 4xx) instead of unwinding through the io_context.
//
// Lifetime: owned by the shared_ptrs its pending operations hold; it ends
// when the peer closes, a timeout fires, an error occurs, or the server
// stops it. All of its code runs on the io thread, and no exception leaves
// its handlers: one is answered with a 5xx, or the connection is closed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "collector/api.h"
#include "collector/connection_limiter.h"
#include "collector/http_framing.h"

namespace tally::collector {

class HttpSession;

// What the sessions of one server share. io thread only.
struct SessionHub {
  Api* api = nullptr;
  // A new connection must deliver its request header within this; a
  // keep-alive connection, within this of the header's first byte.
  std::chrono::milliseconds header_timeout{10000};
  // Idle keep-alive time, and the time for a body and for a response.
  std::chrono::milliseconds request_timeout{30000};
  bool stopping = false;  // answer with Connection: close, take no new requests
  std::list<std::weak_ptr<HttpSession>> live;
  std::function<void()> on_idle;  // called when `live` becomes empty while stopping
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, SessionHub& hub, ConnectionLimiter::Slot slot);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void start();
  // Server shutdown: a connection waiting for a request closes now; one
  // with a request in progress finishes it and then closes.
  void stop();

 private:
  using Request = boost::beast::http::request_parser<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  void do_read_header(bool fresh_connection);
  void do_read(ReadPhase phase);
  void on_read(ReadPhase phase, boost::beast::error_code ec, std::size_t bytes);
  boost::beast::error_code parse_buffered(ReadPhase phase);
  void on_parser_threw(const std::exception& e);
  void on_read_failed(ReadPhase phase, boost::beast::error_code ec);
  void on_header();
  void do_continue();
  void do_read_body();
  void on_body();
  void respond(ApiResponse r, bool close);
  void on_write(boost::beast::error_code ec);
  void do_linger();
  void do_linger_read();
  void close() noexcept;

  // Runs one step of a handler; an exception it throws is answered (or the
  // connection closed) instead of leaving the handler.
  template <class Step>
  void guarded(Step&& step) noexcept;
  void on_exception(const std::exception* e) noexcept;

  boost::beast::tcp_stream stream_;
  SessionHub& hub_;
  ConnectionLimiter::Slot slot_;
  std::list<std::weak_ptr<HttpSession>>::iterator registration_;
  boost::beast::flat_buffer buffer_{kMaxBuffered};
  std::optional<Request> parser_;
  RequestHead head_;
  std::uint64_t body_limit_ = 0;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool waiting_for_request_ = false;  // idle or reading a header: safe to close on stop
  bool header_clock_started_ = false;
  bool input_unread_ = false;  // the response goes out before the request was read to its end
  bool writing_ = false;       // a response (or 100 Continue) is being written
  std::shared_ptr<Response> response_;
  std::uint64_t discarded_ = 0;
};

}  // namespace tally::collector
