#include "collector_server.h"

#include <csignal>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tally/log.h"
#include "token_auth.h"

namespace tally::collector {

namespace asio = boost::asio;
using asio::ip::tcp;

CollectorServer::CollectorServer(const CollectorOptions& options)
    : options_(options),
      signals_(io_, SIGINT, SIGTERM),
      acceptor_(io_),
      grace_timer_(io_),
      accept_retry_(io_) {}

CollectorServer::~CollectorServer() = default;

Result<std::unique_ptr<CollectorServer>> CollectorServer::create(const CollectorOptions& options) {
  std::unique_ptr<CollectorServer> server(new CollectorServer(options));
  Status opened = server->open(options);
  if (!opened.ok()) return opened.error();
  return server;
}

Status CollectorServer::open(const CollectorOptions& o) {
  ApiConfig config;
  if (!o.token_file.empty()) {
    auto token = load_token(o.token_file);
    if (!token.ok()) return token.error();
    config.token = std::move(token).value();
  }
  config.decode_threads =
      o.decode_threads > 0 ? o.decode_threads : std::max(1u, std::thread::hardware_concurrency());
  config.ingest.requests = o.ingest_max_requests;
  config.ingest.bytes = o.ingest_max_bytes;

  BatchStore::Options store_options;
  store_options.path = o.db_path;
  store_options.durability = o.durability;
  store_options.max_page_count = o.max_db_pages;
  store_options.names_max_age_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(o.names_max_age).count());
  auto batches = BatchStore::open(store_options);
  if (!batches.ok()) return batches.error();
  // After the writer: it creates the schema the readers check.
  QueryLimits query_limits;
  query_limits.time = o.query_timeout;
  auto queries = QueryStore::open(o.db_path, query_limits);
  if (!queries.ok()) return queries.error();
  auto health = QueryStore::open(o.db_path, query_limits);
  if (!health.ok()) return health.error();
  api_ = std::make_unique<Api>(io_, std::move(batches).value(), std::move(queries).value(),
                               std::move(health).value(), std::move(config));

  std::string where = fmt::format("listen on {}:{}", o.listen_address, o.listen_port);
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address(o.listen_address, ec), o.listen_port);
  if (ec) return Error::format("{}: {}", where, ec.message());
  if (acceptor_.open(endpoint.protocol(), ec); ec)
    return Error::format("{}: {}", where, ec.message());
  // SO_REUSEADDR: a restart does not wait for the old connections' TIME_WAIT.
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), ec); ec) {
    return Error::format("{}: {}", where, ec.message());
  }
  if (acceptor_.bind(endpoint, ec); ec) return Error::format("{}: {}", where, ec.message());
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Error::format("{}: {}", where, ec.message());
  }

  hub_.api = api_.get();
  hub_.request_timeout = o.request_timeout;
  hub_.max_body_bytes = DecodeLimits{}.max_body_bytes;
  hub_.on_idle = [this] { grace_timer_.cancel(); };
  return ok_status();
}

std::string CollectorServer::listening_on() const {
  boost::system::error_code ec;
  tcp::endpoint e = acceptor_.local_endpoint(ec);
  if (ec) return "?";
  if (e.address().is_v6()) return fmt::format("[{}]:{}", e.address().to_string(), e.port());
  return fmt::format("{}:{}", e.address().to_string(), e.port());
}

int CollectorServer::run() {
  do_wait_signal();
  do_accept();
  io_.run();
  // Work the pools still hold finishes here; its responses are dropped
  // (the agent retries and gets "duplicate"). Then the stores close.
  api_->join();
  hub_.on_idle = nullptr;
  return 0;
}

void CollectorServer::do_wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec || hub_.stopping) return;
    log::info("received {}, stopping", strsignal(signo));
    stop();
  });
}

void CollectorServer::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (hub_.stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of file descriptors, most likely: retry shortly instead of
      // spinning, and say so once rather than per attempt.
      if (!accept_failing_) log::warning("accepting connections fails: {}", ec.message());
      accept_failing_ = true;
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](const boost::system::error_code& wait_ec) {
        if (!wait_ec && !hub_.stopping) do_accept();
      });
      return;
    }
    if (accept_failing_) log::info("accepting connections works again");
    accept_failing_ = false;
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // responses are small and awaited
    std::make_shared<HttpSession>(std::move(socket), hub_)->start();
    do_accept();
  });
}

void CollectorServer::stop() {
  hub_.stopping = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  signals_.cancel();
  accept_retry_.cancel();
  // Copy first: a session stopped here may end, and unregister, at once.
  std::vector<std::weak_ptr<HttpSession>> live(hub_.live.begin(), hub_.live.end());
  for (auto& weak : live) {
    if (auto session = weak.lock()) session->stop();
  }
  if (hub_.live.empty()) return;
  grace_timer_.expires_after(options_.shutdown_grace);
  grace_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // every session finished in time
    log::warning("{} connection(s) still busy after the grace period; stopping anyway",
                 hub_.live.size());
    io_.stop();
  });
}

}  // namespace tally::collector
