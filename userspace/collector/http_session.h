// One HTTP/1.1 connection: reads requests one at a time (keep-alive),
// hands each to the Api, writes the response, and enforces the timeouts.
//
// Lifetime: owned by the shared_ptrs its pending operations hold; it ends
// when the peer closes, a timeout fires, an error occurs, or the server
// stops it. All of its code runs on the io thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "api.h"

namespace tally::collector {

class HttpSession;

// What the sessions of one server share. io thread only.
struct SessionHub {
  Api* api = nullptr;
  std::chrono::milliseconds request_timeout{30000};
  std::uint64_t max_body_bytes = 0;  // as sent; a longer chunked body gets 413
  bool stopping = false;             // answer with Connection: close, take no new requests
  std::list<std::weak_ptr<HttpSession>> live;
  std::function<void()> on_idle;  // called when `live` becomes empty while stopping
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, SessionHub& hub);
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

  void do_read_header();
  void on_header(boost::beast::error_code ec);
  void do_continue();
  void do_read_body();
  void on_body(boost::beast::error_code ec);
  void respond(ApiResponse r, bool close);
  void on_write(boost::beast::error_code ec);
  void do_linger();
  void do_linger_read();
  void close();

  boost::beast::tcp_stream stream_;
  SessionHub& hub_;
  std::list<std::weak_ptr<HttpSession>>::iterator registration_;
  boost::beast::flat_buffer buffer_;
  std::optional<Request> parser_;
  RequestHead head_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool waiting_for_request_ = false;  // idle between requests: safe to close on stop
  bool body_unread_ = false;          // the response goes out before the body was read
  std::shared_ptr<Response> response_;
  std::array<char, 16 * 1024> discard_{};
  std::uint64_t discarded_ = 0;
};

}  // namespace tally::collector
