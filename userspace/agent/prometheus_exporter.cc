#include "prometheus_exporter.h"

#include <chrono>
#include <optional>

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "exposition.h"
#include "tally/log.h"

namespace tally::agent {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A scrape is a few hundred bytes each way; anything slower than this is a
// stuck client holding a socket.
constexpr auto kConnectionDeadline = std::chrono::seconds(10);
constexpr std::uint32_t kMaxHeaderBytes = 8192;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, PrometheusExporter::Render render,
          std::shared_ptr<std::uint64_t> scrapes, std::shared_ptr<bool> stopped)
      : stream_(std::move(socket)),
        render_(std::move(render)),
        scrapes_(std::move(scrapes)),
        stopped_(std::move(stopped)) {}

  void do_read() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(0);  // GET has no body
    stream_.expires_after(kConnectionDeadline);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec || *stopped_) return;  // closed, timed out or malformed: drop the connection
    const auto& req = parser_->get();
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(req.version());
    res->keep_alive(req.keep_alive());
    res->set(http::field::server, "tallyd");
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") {
      res->result(http::status::not_found);
      res->set(http::field::content_type, "text/plain; charset=utf-8");
      res->body() = "tallyd serves /metrics only\n";
    } else if (req.method() != http::verb::get && req.method() != http::verb::head) {
      res->result(http::status::method_not_allowed);
      res->set(http::field::allow, "GET, HEAD");
      res->set(http::field::content_type, "text/plain; charset=utf-8");
      res->body() = "GET /metrics\n";
    } else {
      res->result(http::status::ok);
      res->set(http::field::content_type, kExpositionContentType);
      res->body() = render_();
      ++*scrapes_;
    }
    res->prepare_payload();
    if (req.method() == http::verb::head) res->body().clear();
    stream_.expires_after(kConnectionDeadline);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code wec, std::size_t) {
                        if (wec || !res->keep_alive() || *self->stopped_) {
                          beast::error_code ignored;
                          self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
                          return;
                        }
                        self->do_read();
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  PrometheusExporter::Render render_;
  std::shared_ptr<std::uint64_t> scrapes_;
  std::shared_ptr<bool> stopped_;
};

}  // namespace

PrometheusExporter::PrometheusExporter(asio::io_context& io, Render render)
    : render_(std::move(render)), acceptor_(io), retry_(io) {}

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
  *stopped_ = false;
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
  *stopped_ = true;
  beast::error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
}

void PrometheusExporter::do_accept() {
  acceptor_.async_accept([this, stopped = stopped_](beast::error_code ec, tcp::socket socket) {
    if (*stopped) return;  // `this` may be gone once stopped
    if (!ec) {
      std::make_shared<Session>(std::move(socket), render_, scrapes_, stopped_)->do_read();
      do_accept();
      return;
    }
    // Out of file descriptors and the like: say so, pause, go on.
    log::warning("prometheus exporter: accept: {}", ec.message());
    retry_.expires_after(std::chrono::seconds(1));
    retry_.async_wait([this, stopped](beast::error_code wec) {
      if (!wec && !*stopped) do_accept();
    });
  });
}

}  // namespace tally::agent
