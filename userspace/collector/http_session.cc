#include "collector/http_session.h"

#include <limits>
#include <new>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/write.hpp>

#include "collector/api_json.h"
#include "tally/log.h"

namespace tally::collector {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// After an early response the client may still be sending its body; reading
// and discarding it for a while lets the client see the response instead of
// a reset (the "lingering close" of RFC 9112 section 9.6).
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::uint64_t kLingerBytes = 32u << 20;
// A body streams through the buffer into the request: larger reads, fewer
// system calls. A header is read in Beast's small steps (512 bytes at
// first), so that an idle connection holds next to no buffer.
constexpr std::size_t kBodyReadSize = 32 * 1024;

std::string_view unparsed(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.data().data()), buffer.size()};
}

}  // namespace

HttpSession::HttpSession(asio::ip::tcp::socket socket, SessionHub& hub,
                         ConnectionLimiter::Slot slot)
    : stream_(std::move(socket)), hub_(hub), slot_(std::move(slot)) {}

HttpSession::~HttpSession() {
  hub_.live.erase(registration_);
  if (hub_.stopping && hub_.live.empty() && hub_.on_idle) hub_.on_idle();
}

void HttpSession::start() {
  registration_ = hub_.live.insert(hub_.live.end(), weak_from_this());
  guarded([&] { do_read_header(true); });
}

void HttpSession::stop() {
  if (waiting_for_request_) close();
}

void HttpSession::close() noexcept {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
}

template <class Step>
void HttpSession::guarded(Step&& step) noexcept {
  try {
    step();
  } catch (const std::exception& e) {
    on_exception(&e);
  } catch (...) {
    on_exception(nullptr);
  }
}

void HttpSession::on_exception(const std::exception* e) noexcept {
  try {
    log::error("HTTP connection: a handler failed: {}", e ? e->what() : "unknown exception");
    if (!writing_) {
      bool out_of_memory = dynamic_cast<const std::bad_alloc*>(e) != nullptr;
      ApiResponse r(out_of_memory ? 503 : 500,
                    error_json(out_of_memory ? "collector out of memory" : "internal error"));
      if (out_of_memory) r.retry_after = 5;
      respond(std::move(r), true);
      return;
    }
  } catch (...) {
    // Out of memory even for the answer: closing is what is left.
  }
  close();
}

void HttpSession::do_read_header(bool fresh_connection) {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  // The body limit is checked in precheck() against Content-Length, after
  // authentication; Beast would otherwise fail the header read itself.
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  waiting_for_request_ = true;
  input_unread_ = false;
  // An idle keep-alive connection gives its buffer back until the next request.
  if (buffer_.size() == 0) buffer_.shrink_to_fit();
  // A new connection gets the header timeout at once: a client that connects
  // and sends nothing, or drips its header, is dropped early. A keep-alive
  // connection may idle for the request timeout, and the header timeout
  // starts with the next request's first byte (in do_read).
  header_clock_started_ = fresh_connection || buffer_.size() > 0;
  stream_.expires_after(header_clock_started_ ? std::min(hub_.header_timeout, hub_.request_timeout)
                                              : hub_.request_timeout);
  do_read(ReadPhase::header);
}

void HttpSession::do_read(ReadPhase phase) {
  beast::error_code ec;
  try {
    ec = parse_buffered(phase);
  } catch (const std::exception& e) {
    return on_parser_threw(e);
  }
  if (!ec) return phase == ReadPhase::header ? on_header() : on_body();
  if (ec != http::error::need_more) return on_read_failed(phase, ec);
  if (phase == ReadPhase::header && !header_clock_started_ && buffer_.size() > 0) {
    header_clock_started_ = true;
    stream_.expires_after(std::min(hub_.header_timeout, hub_.request_timeout));
  }
  std::size_t room = phase == ReadPhase::header
                         ? beast::read_size(buffer_, kMaxBuffered)
                         : std::min(kBodyReadSize, buffer_.max_size() - buffer_.size());
  // Full, and the parser still waits for the end of what it holds.
  if (room == 0) return on_read_failed(phase, http::error::buffer_overflow);
  stream_.async_read_some(buffer_.prepare(room), [self = shared_from_this(), phase](
                                                     beast::error_code read_ec, std::size_t n) {
    self->guarded([&] { self->on_read(phase, read_ec, n); });
  });
}

void HttpSession::on_read(ReadPhase phase, beast::error_code ec, std::size_t bytes) {
  buffer_.commit(bytes);
  if (ec == asio::error::eof) {
    ec = parser_->got_some() ? http::error::partial_message : http::error::end_of_stream;
  }
  if (ec) return on_read_failed(phase, ec);
  do_read(phase);
}

// Feeds the buffered bytes to the parser until `phase` is complete (no
// error), the parser needs more (need_more) or fails (its error).
beast::error_code HttpSession::parse_buffered(ReadPhase phase) {
  auto complete = [&] {
    return phase == ReadPhase::header ? parser_->is_header_done() : parser_->is_done();
  };
  while (!complete()) {
    if (buffer_.size() == 0) return http::error::need_more;
    beast::error_code ec;
    std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec) return ec;
    if (used == 0) return http::error::need_more;
  }
  return {};
}

void HttpSession::on_parser_threw(const std::exception& e) {
  log::debug("HTTP parser threw: {}", e.what());
  waiting_for_request_ = false;
  input_unread_ = true;
  respond(parser_exception_response(e), true);
}

void HttpSession::on_read_failed(ReadPhase phase, beast::error_code ec) {
  waiting_for_request_ = false;
  std::optional<ApiResponse> answer = framing_failure(ec, phase, unparsed(buffer_), body_limit_);
  if (!answer) {
    if (phase == ReadPhase::body) log::debug("request body not received: {}", ec.message());
    return close();  // the peer left, reset or timed out, or the server is stopping
  }
  log::debug("refused a request: {} {}", answer->status, ec.message());
  input_unread_ = true;  // the rest of what broke the limit may still be on its way
  respond(std::move(*answer), true);
}

void HttpSession::on_header() {
  waiting_for_request_ = false;
  const auto& req = parser_->get();
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  head_ = RequestHead{};
  head_.method = std::string(req.method_string());
  head_.target = std::string(req.target());
  head_.content_type = std::string(req[http::field::content_type]);
  head_.content_encoding = std::string(req[http::field::content_encoding]);
  head_.authorization = std::string(req[http::field::authorization]);
  head_.accept = std::string(req[http::field::accept]);
  head_.user_agent = std::string(req[http::field::user_agent]);
  auto length = parser_->content_length();
  head_.has_length = length.has_value() || parser_->chunked();
  if (length) head_.content_length = *length;
  input_unread_ = !parser_->is_done();

  if (hub_.stopping) {
    ApiResponse r{503, error_json("collector is shutting down")};
    r.retry_after = 1;
    respond(std::move(r), true);
    return;
  }
  if (auto early = hub_.api->precheck(head_)) {
    respond(std::move(*early), input_unread_);
    return;
  }
  if (!input_unread_) {
    hub_.api->handle(head_, {}, [self = shared_from_this()](ApiResponse r) {
      self->guarded([&] { self->respond(std::move(r), false); });
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
  writing_ = true;
  http::async_write(stream_, *cont,
                    [self = shared_from_this(), cont](beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (ec) return self->close();
                      self->guarded([&] { self->do_read_body(); });
                    });
}

void HttpSession::do_read_body() {
  // Every endpoint has one, the GET endpoints 0: a chunked body is cut off
  // at the limit however it is framed.
  body_limit_ = hub_.api->body_limit(head_);
  parser_->body_limit(body_limit_);
  stream_.expires_after(hub_.request_timeout);
  do_read(ReadPhase::body);
}

void HttpSession::on_body() {
  input_unread_ = false;
  hub_.api->handle(head_, parser_->release().body(), [self = shared_from_this()](ApiResponse r) {
    self->guarded([&] { self->respond(std::move(r), false); });
  });
}

void HttpSession::respond(ApiResponse r, bool close_after) {
  if (close_after || hub_.stopping) keep_alive_ = false;
  response_ = std::make_shared<Response>(static_cast<http::status>(r.status), version_);
  response_->set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) response_->set(name, value);
  if (r.retry_after > 0) response_->set(http::field::retry_after, std::to_string(r.retry_after));
  if (!r.allow.empty()) response_->set(http::field::allow, r.allow);
  if (r.authenticate) response_->set(http::field::www_authenticate, "Bearer");
  response_->body() = std::move(r.body);
  response_->keep_alive(keep_alive_);
  response_->prepare_payload();
  stream_.expires_after(hub_.request_timeout);
  writing_ = true;
  http::async_write(stream_, *response_,
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->writing_ = false;
                      self->guarded([&] { self->on_write(ec); });
                    });
}

void HttpSession::on_write(beast::error_code ec) {
  response_.reset();
  if (ec) return close();
  if (keep_alive_) return do_read_header(false);
  if (input_unread_) return do_linger();
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.close();
}

void HttpSession::do_linger() {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTime);  // one deadline for all the reads below
  parser_.reset();
  do_linger_read();
}

void HttpSession::do_linger_read() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(std::min(kBodyReadSize, buffer_.max_size())),
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->discarded_ += n;
                            if (ec || self->discarded_ > kLingerBytes) return self->close();
                            self->guarded([&] { self->do_linger_read(); });
                          });
}

}  // namespace tally::collector
