#include "collector/collector_server.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "collector/fd_limit.h"
#include "collector/token_auth.h"
#include "tally/log.h"

namespace tally::collector {

namespace asio = boost::asio;
using asio::ip::tcp;

CollectorServer::CollectorServer(const CollectorOptions& options)
    : options_(options),
      signals_(io_, SIGINT, SIGTERM),
      acceptor_(io_),
      grace_timer_(io_),
      accept_retry_(io_),
      refusal_report_(io_) {}

CollectorServer::~CollectorServer() = default;

Result<std::unique_ptr<CollectorServer>> CollectorServer::create(const CollectorOptions& options) {
  std::unique_ptr<CollectorServer> server(new CollectorServer(options));
  Status opened = server->open(options);
  if (!opened.ok()) return opened.error();
  return server;
}

namespace {

Result<std::shared_ptr<const Credentials>> load_credentials(const std::string& path,
                                                            std::string_view what) {
  auto credentials = Credentials::load(path);
  if (!credentials.ok()) return credentials.error();
  log::info("{} take {} credentials ({} tokens) from {}", what, credentials->credentials(),
            credentials->tokens(), path);
  return std::make_shared<const Credentials>(std::move(credentials).value());
}

bool is_loopback_address(const std::string& address) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(address, ec);
  return !ec && a.is_loopback();
}

}  // namespace

Status CollectorServer::open(const CollectorOptions& o) {
  ApiConfig config;
  if (!o.token_file.empty()) {
    auto credentials = load_credentials(o.token_file, "batches");
    if (!credentials.ok()) return credentials.error();
    config.credentials = std::move(credentials).value();
  }
  if (!o.read_token_file.empty()) {
    auto credentials = load_credentials(o.read_token_file, "reads");
    if (!credentials.ok()) return credentials.error();
    config.read_credentials = std::move(credentials).value();
  }
  // Reads show every agent's data: open only where the operator said so,
  // or, on a collector without tokens, on a loopback address, which no
  // other host reaches. A collector with agents' tokens takes read tokens
  // apart: an agent's token does not read the fleet.
  const bool untokened_loopback =
      is_loopback_address(o.listen_address) && o.token_file.empty() && o.read_token_file.empty();
  config.open_reads = o.open_reads || untokened_loopback;
  if (!config.read_credentials && !config.open_reads) {
    log::info("reads are refused on {} (403): give --read-token-file, or --open-reads",
              o.listen_address);
  }
  config.decode_threads =
      o.decode_threads > 0 ? o.decode_threads : std::max(1u, std::thread::hardware_concurrency());
  config.ingest.requests = o.ingest_max_requests;
  config.ingest.bytes = o.ingest_max_bytes;

  BatchStore::Options store_options;
  store_options.path = o.db_path;
  store_options.durability = o.durability;
  store_options.max_page_count = o.max_db_pages;
  store_options.rebind_from = o.rebind_from;
  store_options.retention = o.retention;
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
  token_reloader_ = std::make_unique<TokenReloader>(io_, o.token_file, o.read_token_file, *api_);
  api_->start_housekeeping(o.housekeeping_period);

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
  hub_.header_timeout = o.header_timeout;
  hub_.request_timeout = o.request_timeout;
  hub_.on_idle = [this] { grace_timer_.cancel(); };
  return limit_connections(o);
}

// Every connection costs a file descriptor: the cap keeps the collector
// below RLIMIT_NOFILE, so that accept() does not fail with EMFILE and the
// database can still open its files.
Status CollectorServer::limit_connections(const CollectorOptions& o) {
  std::uint64_t fd_limit = 1024;
  if (auto raised = raise_fd_limit(); raised.ok()) {
    fd_limit = *raised;
  } else {
    log::warning("{}; assuming {} file descriptors", raised.error().message(), fd_limit);
  }
  std::uint64_t fd_cap = connections_for_fd_limit(fd_limit);
  std::uint64_t total =
      o.max_connections > 0 ? o.max_connections : std::min(fd_cap, kDefaultMaxConnections);
  if (total > fd_cap) {
    log::warning(
        "--max-connections {}: RLIMIT_NOFILE allows {} file descriptors, {} of them kept for "
        "the database and the server; serving at most {} connections",
        o.max_connections, fd_limit, reserved_fds(fd_limit), fd_cap);
    total = fd_cap;
  }
  if (total == 0) {
    return Error::format("RLIMIT_NOFILE allows {} file descriptors: too few to serve", fd_limit);
  }
  limiter_ = std::make_unique<ConnectionLimiter>(total, o.max_connections_per_address);
  log::info("serving at most {} connections, {} per client address (RLIMIT_NOFILE {})", total,
            o.max_connections_per_address, fd_limit);
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
  token_reloader_->start();
  do_accept();
  // Handlers answer their own failures; this is the last resort that keeps
  // one that still throws from taking every other connection down
  // (io_context::run() may be called again after a handler threw).
  for (;;) {
    try {
      io_.run();
      break;
    } catch (const std::exception& e) {
      log::error("a handler failed, serving on: {}", e.what());
    } catch (...) {
      log::error("a handler failed with an unknown exception, serving on");
    }
    try {
      if (!hub_.stopping && !accept_pending_) do_accept_later();
    } catch (...) {
      // Out of memory: the next turn of the loop tries again.
    }
  }
  // Work the pools still hold finishes here; its responses are dropped
  // (the agent retries and gets "duplicate"). Then the stores close.
  api_->join();
  hub_.on_idle = nullptr;
  return 0;
}

void CollectorServer::do_wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec || hub_.stopping) return;
    try {
      log::info("received {}, stopping", strsignal(signo));
      stop();
    } catch (const std::exception& e) {
      // The signal is not waited for again: stop the hard way rather than
      // ignore the next SIGTERM.
      log::error("stopping: {}; stopping at once", e.what());
      io_.stop();
    }
  });
}

void CollectorServer::do_accept() {
  accept_pending_ = true;
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    accept_pending_ = false;
    if (hub_.stopping || ec == asio::error::operation_aborted) return;
    try {
      on_accept(ec, std::move(socket));
    } catch (const std::exception& e) {
      log::error("accepting a connection: {}", e.what());
      if (!accept_pending_) do_accept_later();
    }
  });
}

void CollectorServer::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::connection_aborted) return do_accept();  // the peer gave up first
  if (ec) {
    // Out of file descriptors or memory: the connection stays in the
    // backlog and an immediate retry would fail again. Back off, doubling
    // up to a second, and say so once rather than per attempt.
    if (!accept_failing_) log::warning("accepting connections fails: {}", ec.message());
    accept_failing_ = true;
    return do_accept_later();
  }
  if (accept_failing_) log::info("accepting connections works again");
  accept_failing_ = false;
  accept_backoff_ = std::chrono::milliseconds(0);
  admit(std::move(socket));
  do_accept();
}

void CollectorServer::do_accept_later() {
  using std::chrono::milliseconds;
  accept_backoff_ = std::clamp(accept_backoff_ * 2, milliseconds(10), milliseconds(1000));
  accept_pending_ = true;
  accept_retry_.expires_after(accept_backoff_);
  accept_retry_.async_wait([this](const boost::system::error_code& wait_ec) {
    accept_pending_ = false;
    if (!wait_ec && !hub_.stopping) do_accept();
  });
}

void CollectorServer::admit(tcp::socket socket) {
  boost::system::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return;  // already reset by the peer
  ConnectionLimiter::Refusal why = ConnectionLimiter::Refusal::none;
  ConnectionLimiter::Slot slot = limiter_->admit(peer.address(), why);
  if (!slot.held()) {
    // Closed at once (as `socket` goes out of scope): waiting in the
    // backlog instead would hold the client for nothing.
    report_refusal(peer.address(), why);
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);  // responses are small and awaited
  std::make_shared<HttpSession>(std::move(socket), hub_, std::move(slot))->start();
}

void CollectorServer::report_refusal(const asio::ip::address& peer,
                                     ConnectionLimiter::Refusal why) {
  if (refusals_reported_) {
    ++refused_since_report_;
    return;
  }
  if (why == ConnectionLimiter::Refusal::total) {
    log::warning("refusing connections: {} open, the limit (--max-connections); closing new ones",
                 limiter_->total());
  } else {
    log::warning(
        "refusing connections from {}: {} open from it, the limit "
        "(--max-connections-per-address); closing its new ones",
        ConnectionLimiter::client_of(peer), limiter_->from(peer));
  }
  refusals_reported_ = true;
  refused_since_report_ = 0;
  do_report_refusals();
}

void CollectorServer::do_report_refusals() {
  refusal_report_.expires_after(std::chrono::minutes(1));
  refusal_report_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (refused_since_report_ == 0) {
      log::info("no connections refused for a minute");
      refusals_reported_ = false;
      return;
    }
    log::warning("refused {} more connections over the limits in the last minute ({} open)",
                 refused_since_report_, limiter_->total());
    refused_since_report_ = 0;
    do_report_refusals();
  });
}

void CollectorServer::stop() {
  hub_.stopping = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  signals_.cancel();
  token_reloader_->stop();
  api_->stop_housekeeping();
  accept_retry_.cancel();
  refusal_report_.cancel();
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
