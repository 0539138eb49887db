#include "http_session.h"

#include <limits>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "api_json.h"
#include "tally/log.h"

namespace tally::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::uint32_t kHeaderLimit = 16 * 1024;
// After an early response the client may still be sending its body; reading
// and discarding it for a while lets the client see the response instead of
// a reset (the "lingering close" of RFC 9112 section 9.6).
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::uint64_t kLingerBytes = 32u << 20;

bool is_http_syntax_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

}  // namespace

HttpSession::HttpSession(asio::ip::tcp::socket socket, SessionHub& hub)
    : stream_(std::move(socket)), hub_(hub) {}

HttpSession::~HttpSession() {
  hub_.live.erase(registration_);
  if (hub_.stopping && hub_.live.empty() && hub_.on_idle) hub_.on_idle();
}

void HttpSession::start() {
  registration_ = hub_.live.insert(hub_.live.end(), weak_from_this());
  do_read_header();
}

void HttpSession::stop() {
  if (waiting_for_request_) close();
}

void HttpSession::close() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

void HttpSession::do_read_header() {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  // The body limit is checked in precheck() against Content-Length, after
  // authentication; Beast would otherwise fail the header read itself.
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  waiting_for_request_ = true;
  body_unread_ = false;
  // One deadline covers waiting for the request (idle keep-alive) and its
  // header, another its body: a client that stalls is dropped either way.
  stream_.expires_after(hub_.request_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
}

void HttpSession::on_header(beast::error_code ec) {
  waiting_for_request_ = false;
  if (ec) {
    if (is_http_syntax_error(ec) && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      respond(ApiResponse{400, error_json("malformed HTTP request: " + ec.message())}, true);
    } else {
      close();  // the peer left, timed out, or the server is stopping
    }
    return;
  }
  const auto& req = parser_->get();
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  head_ = RequestHead{};
  head_.method = std::string(req.method_string());
  head_.target = std::string(req.target());
  head_.content_type = std::string(req[http::field::content_type]);
  head_.content_encoding = std::string(req[http::field::content_encoding]);
  head_.authorization = std::string(req[http::field::authorization]);
  auto length = parser_->content_length();
  head_.has_length = length.has_value() || parser_->chunked();
  if (length) head_.content_length = *length;
  body_unread_ = !parser_->is_done();

  if (hub_.stopping) {
    ApiResponse r{503, error_json("collector is shutting down")};
    r.retry_after = 1;
    respond(std::move(r), true);
    return;
  }
  if (auto early = hub_.api->precheck(head_)) {
    respond(std::move(*early), body_unread_);
    return;
  }
  if (!body_unread_) {
    hub_.api->handle(head_, {}, [self = shared_from_this()](ApiResponse r) {
      self->respond(std::move(r), false);
    });
    return;
  }
  // curl and others wait (a second, for curl) for this before sending a
  // large body (RFC 9110 section 10.1.1).
  if (beast::iequals(req[http::field::expect], "100-continue")) {
    do_continue();
  } else {
    do_read_body();
  }
}

void HttpSession::do_continue() {
  auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, version_);
  http::async_write(stream_, *cont,
                    [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
                      if (ec) return self->close();
                      self->do_read_body();
                    });
}

void HttpSession::do_read_body() {
  parser_->body_limit(hub_.max_body_bytes);
  stream_.expires_after(hub_.request_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
}

void HttpSession::on_body(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    respond(ApiResponse{413, error_json("body: more than the limit of " +
                                        std::to_string(hub_.max_body_bytes) + " bytes")},
            true);
    return;
  }
  if (ec) {
    // Reset, timeout or a malformed chunk mid-body: there is nobody to tell,
    // or nothing sensible to tell them. Other connections are unaffected.
    if (is_http_syntax_error(ec) && ec != http::error::partial_message) {
      respond(ApiResponse{400, error_json("malformed HTTP request: " + ec.message())}, true);
    } else {
      log::debug("request body not received: {}", ec.message());
      close();
    }
    return;
  }
  body_unread_ = false;
  hub_.api->handle(head_, parser_->release().body(), [self = shared_from_this()](ApiResponse r) {
    self->respond(std::move(r), false);
  });
}

void HttpSession::respond(ApiResponse r, bool close_after) {
  if (close_after || hub_.stopping) keep_alive_ = false;
  response_ = std::make_shared<Response>(static_cast<http::status>(r.status), version_);
  response_->set(http::field::content_type, "application/json");
  if (r.retry_after > 0) response_->set(http::field::retry_after, std::to_string(r.retry_after));
  if (!r.allow.empty()) response_->set(http::field::allow, r.allow);
  if (r.authenticate) response_->set(http::field::www_authenticate, "Bearer");
  response_->body() = std::move(r.body);
  response_->keep_alive(keep_alive_);
  response_->prepare_payload();
  stream_.expires_after(hub_.request_timeout);
  http::async_write(
      stream_, *response_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
}

void HttpSession::on_write(beast::error_code ec) {
  response_.reset();
  if (ec) return close();
  if (keep_alive_) return do_read_header();
  if (body_unread_) return do_linger();
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.close();
}

void HttpSession::do_linger() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTime);  // one deadline for all the reads below
  do_linger_read();
}

void HttpSession::do_linger_read() {
  stream_.async_read_some(asio::buffer(discard_),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->discarded_ += n;
                            if (ec || self->discarded_ > kLingerBytes) return self->close();
                            self->do_linger_read();
                          });
}

}  // namespace tally::collector
