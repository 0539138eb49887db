#include "agent/prometheus_exporter.h"

#include <exception>
#include <optional>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "agent/exposition.h"
#include "tally/log.h"

namespace tally::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

using Response = http::response<http::string_body>;

// Beast bounds the header by header_limit and the body by body_limit, but
// chunk-size lines (with their extensions) and trailers only by the buffer
// it reads into: an unbounded flat_buffer grows with them, and a trailer
// field over 64 KiB throws from basic_fields. Capping the buffer ends such
// a read with http::error::buffer_overflow instead.
static_assert(PrometheusExporter::kMaxBufferedBytes >= PrometheusExporter::kMaxHeaderBytes);
static_assert(PrometheusExporter::kMaxBufferedBytes < 65535, "below basic_fields' field limit");

// The answer to a request the parser refused, or nothing if the connection
// just ended (closed, timed out, reset).
std::optional<std::pair<http::status, std::string>> refusal(const beast::error_code& ec) {
  if (ec.category() != http::make_error_code(http::error::bad_target).category()) {
    return std::nullopt;  // a socket error: nobody to answer
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec == http::error::header_limit) {
    return std::pair{
        http::status::request_header_fields_too_large,
        fmt::format("request header over {} bytes\n", PrometheusExporter::kMaxHeaderBytes)};
  }
  if (ec == http::error::body_limit) {
    return std::pair{http::status::payload_too_large, std::string("GET /metrics takes no body\n")};
  }
  if (ec == http::error::buffer_overflow) {
    return std::pair{http::status::request_header_fields_too_large,
                     fmt::format("request too large: chunk extensions and trailers are limited "
                                 "to {} bytes\n",
                                 PrometheusExporter::kMaxBufferedBytes)};
  }
  return std::pair{http::status::bad_request, fmt::format("malformed request: {}\n", ec.message())};
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<PrometheusExporter::Shared> shared)
      : stream_(std::move(socket)),
        buffer_(PrometheusExporter::kMaxBufferedBytes),
        shared_(std::move(shared)) {}

  ~Session() { shared_->table.remove(id_); }

  void start(ConnectionTable::Id id) {
    id_ = id;
    do_read();
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(PrometheusExporter::kMaxHeaderBytes);
    parser_->body_limit(0);  // GET has no body
    shared_->table.set_busy(id_, false);
    // The whole request, from connect or the previous answer on.
    stream_.expires_after(PrometheusExporter::kRequestDeadline);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (shared_->stopped) return;
    shared_->table.set_busy(id_, true);
    if (ec) {
      if (auto r = refusal(ec)) {
        ++shared_->requests_refused;
        write(make_response(r->first, 11, false, std::move(r->second)), false);
      }
      return;  // else: closed, timed out or reset; the session ends here
    }
    const auto& req = parser_->get();
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    std::shared_ptr<Response> res;
    if (path != "/metrics") {
      res = make_response(http::status::not_found, req.version(), req.keep_alive(),
                          "tallyd serves /metrics only\n");
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res = make_response(http::status::method_not_allowed, req.version(), req.keep_alive(),
                          "GET /metrics\n");
      res->set(http::field::allow, "GET, HEAD");
    } else {
      res = make_response(http::status::ok, req.version(), req.keep_alive(), {});
      try {
        res->body() = shared_->render();
        res->set(http::field::content_type, kExpositionContentType);
        ++shared_->scrapes;
      } catch (const std::exception& e) {
        log::error("prometheus exporter: rendering /metrics failed: {}", e.what());
        res = make_response(http::status::internal_server_error, req.version(), false,
                            "rendering the page failed; see tallyd's log\n");
      }
    }
    res->prepare_payload();
    if (req.method() == http::verb::head) res->body().clear();
    write(res, res->keep_alive());
  }

  static std::shared_ptr<Response> make_response(http::status status, unsigned version,
                                                 bool keep_alive, std::string body) {
    auto res = std::make_shared<Response>(status, version);
    res->keep_alive(keep_alive);
    res->set(http::field::server, "tallyd");
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->body() = std::move(body);
    res->prepare_payload();
    return res;
  }

  void write(const std::shared_ptr<Response>& res, bool then_read) {
    stream_.expires_after(PrometheusExporter::kWriteDeadline);
    http::async_write(
        stream_, *res,
        [self = shared_from_this(), res, then_read](beast::error_code ec, std::size_t) {
          if (ec || !then_read || self->shared_->stopped) {
            self->close();
            return;
          }
          self->do_read();
        });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<PrometheusExporter::Shared> shared_;
  ConnectionTable::Id id_ = 0;
};

std::string peer_of(const tcp::socket& socket) {
  beast::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  return ec ? std::string("unknown address") : ep.address().to_string();
}

}  // namespace

PrometheusExporter::PrometheusExporter(asio::io_context& io, Render render)
    : acceptor_(io), accept_pause_(io), shared_(std::make_shared<Shared>(std::move(render))) {}

PrometheusExporter::~PrometheusExporter() { stop(); }

Status PrometheusExporter::listen(const ListenAddress& address) {
  const auto fail = [&](const char* step, const beast::error_code& ec) {
    return Error::format("prometheus exporter: {} {}:{}: {}", step, address.ip, address.port,
                         ec.message());
  };
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address.ip, ec);
  if (ec) return fail("parse", ec);
  const tcp::endpoint endpoint(ip, address.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open socket for", ec);
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind", ec);
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on", ec);
  shared_->stopped = false;
  do_accept();
  return ok_status();
}

std::string PrometheusExporter::listening_on() const {
  beast::error_code ec;
  const auto ep = acceptor_.local_endpoint(ec);
  if (ec) return "(not listening)";
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

void PrometheusExporter::stop() {
  shared_->stopped = true;
  beast::error_code ec;
  acceptor_.close(ec);
  accept_pause_.cancel();
  shared_->table.close_all();
}

PrometheusExporter::Counters PrometheusExporter::counters() const {
  return Counters{shared_->scrapes, shared_->table.size(), shared_->table.evicted(),
                  backoff_.failures(), shared_->requests_refused};
}

void PrometheusExporter::do_accept() {
  acceptor_.async_accept([this, shared = shared_](beast::error_code ec, tcp::socket socket) {
    if (shared->stopped) return;  // `this` may be gone once stopped
    on_accept(ec, std::move(socket));
  });
}

void PrometheusExporter::on_accept(const beast::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    // The listener stays readable while accept fails: retrying at once
    // would spin. Closing an idle connection frees a descriptor for the next.
    const auto pause = backoff_.failed(ec);
    if (out_of_descriptors(ec)) shared_->table.close_oldest_idle();
    accept_pause_.expires_after(pause);
    accept_pause_.async_wait([this, shared = shared_](beast::error_code wec) {
      if (!wec && !shared->stopped) do_accept();
    });
    return;
  }
  backoff_.succeeded();
  const std::string peer = peer_of(socket);
  auto session = std::make_shared<Session>(std::move(socket), shared_);
  std::weak_ptr<Session> weak = session;
  const auto id = shared_->table.admit(peer, [weak] {
    if (auto s = weak.lock()) s->close();
  });
  session->start(id);
  do_accept();
}

}  // namespace tally::agent
