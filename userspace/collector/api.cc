#include "collector/api.h"

#include <exception>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "collector/api_json.h"
#include "collector/query_params.h"
#include "collector/series_format.h"
#include "collector/token_auth.h"
#include "collector/web_assets.h"
#include "tally/log.h"
#include "tally/time_util.h"

namespace tally::collector {

namespace asio = boost::asio;

namespace {

enum class Endpoint { batches, agents, samples, top, series, healthz, page, none };

struct Route {
  Endpoint endpoint;
  const char* method;
};

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view query_of(std::string_view target) {
  std::size_t q = target.find('?');
  return q == target.npos ? std::string_view() : target.substr(q + 1);
}

Route route(std::string_view path) {
  if (path == "/v1/batches") return {Endpoint::batches, "POST"};
  if (path == "/v1/agents") return {Endpoint::agents, "GET"};
  if (path == "/v1/samples") return {Endpoint::samples, "GET"};
  if (path == "/v1/top") return {Endpoint::top, "GET"};
  if (path == "/v1/series") return {Endpoint::series, "GET"};
  if (path == "/healthz") return {Endpoint::healthz, "GET"};
  if (find_web_asset(path) != nullptr) return {Endpoint::page, "GET"};
  return {Endpoint::none, ""};
}

ApiResponse error_response(unsigned status, std::string_view message) {
  return ApiResponse{status, error_json(message)};
}

// Database errors are the agent's cue to retry later: 503, never a 4xx,
// which would make it dead-letter data that is fine.
ApiResponse unavailable(const Error& e) {
  ApiResponse r = error_response(503, e.message());
  r.retry_after = 5;
  return r;
}

// Seconds a refused client is asked to wait: long enough for the writer to
// drain a good part of the budget, short enough not to idle it.
constexpr unsigned kBusyRetryAfter = 2;

// What a decoded request holds in memory, about: its strings and the
// per-sample structures around them.
std::uint64_t decoded_bytes(const BatchRequest& r) {
  std::uint64_t bytes = sizeof(BatchRequest) + r.agent_id.capacity() + r.host.capacity();
  if (const auto* piece = std::get_if<SamplesPiece>(&r.body)) {
    bytes += piece->samples.capacity() * sizeof(StoredSample);
    for (const StoredSample& s : piece->samples) {
      bytes += s.host.capacity() + s.names.capacity() + s.json.capacity();
    }
  } else {
    const auto& gap = std::get<GapRecord>(r.body);
    bytes += gap.reason.capacity() + gap.detail.capacity();
  }
  return bytes;
}

// Runs work on a worker thread so that nothing it throws (std::bad_alloc,
// say) escapes the thread and ends the process: the request gets a 503.
template <typename Work>
ApiResponse guarded(std::string_view what, Work&& work) noexcept {
  try {
    try {
      return work();
    } catch (const std::bad_alloc&) {
      // 503: the agent retries, and memory may be there by then.
      log::warning("{}: out of memory", what);
      ApiResponse r = error_response(503, fmt::format("{}: collector out of memory", what));
      r.retry_after = 5;
      return r;
    } catch (const std::exception& e) {
      // The cause goes to the log only: it may name internals.
      log::error("{}: {}", what, e.what());
    } catch (...) {
      log::error("{}: unknown exception", what);
    }
    return error_response(500, fmt::format("{}: internal error", what));
  } catch (...) {
    // Not even the answer could be made: a bare 500 needs no allocation.
    return ApiResponse{};
  }
}

// The response that refuses a request for want of the right token, or
// nullopt; sets head.credential to the credential of the token it took.
std::optional<ApiResponse> refuse_unauthenticated(const ApiConfig& config, Endpoint endpoint,
                                                  RequestHead& head) {
  // The page holds no data: it asks for the read token and sends it with
  // each query.
  if (endpoint == Endpoint::healthz || endpoint == Endpoint::page) return std::nullopt;
  const bool read = endpoint != Endpoint::batches;
  const Credentials* accepted = read ? config.read_credentials.get() : config.credentials.get();
  if (accepted == nullptr) {
    if (!read || config.open_reads) return std::nullopt;
    return error_response(403,
                          "reads need a token of --read-token-file (or --open-reads, to serve "
                          "them without one on this address)");
  }
  head.credential = accepted->authenticate(head.authorization);
  if (head.credential) return std::nullopt;
  ApiResponse resp = error_response(401, head.authorization.empty() ? "missing bearer token"
                                         : read ? "invalid bearer token (reads take a read token)"
                                                : "invalid bearer token");
  resp.authenticate = true;
  return resp;
}

}  // namespace

Api::Api(asio::io_context& io, std::unique_ptr<BatchStore> batches,
         std::unique_ptr<QueryStore> queries, std::unique_ptr<QueryStore> health, ApiConfig config)
    : io_(io),
      batches_(std::move(batches)),
      queries_(std::move(queries)),
      health_queries_(std::move(health)),
      config_(std::move(config)),
      budget_(config_.ingest),
      decode_pool_(config_.decode_threads) {}

Api::~Api() { join(); }

void Api::join() {
  decode_pool_.join();
  writer_.join();
  reader_.join();
  health_thread_.join();
}

namespace {
// While batches are in: a step (at most ~30 ms) a second, ~3% of the
// writer. That still sums ~1,000 host-minutes a minute, so rollups keep up
// with a collector that is never idle, and catch up when it is.
constexpr std::chrono::milliseconds kHousekeepingYield{1000};

// What a client says it is, safe to store and show: printable ASCII only.
std::string printable_prefix(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}
constexpr std::chrono::milliseconds kHousekeepingPause{5};
}  // namespace

ApiResponse Api::busy() {
  const IngestBudget::Limits limits = budget_.limits();
  const IngestBudget::Usage used = budget_.usage();
  ApiResponse r = error_response(
      503, fmt::format("collector busy: {} batch requests ({} MiB) in progress, at most {} "
                       "requests or {} MiB (--ingest-max-requests, --ingest-max-mib); "
                       "retry later",
                       used.requests, used.bytes >> 20, limits.requests, limits.bytes >> 20));
  r.retry_after = kBusyRetryAfter;
  if (!refusing_.exchange(true)) {
    log::warning("refusing batches for now: {} requests ({} MiB) in progress", used.requests,
                 used.bytes >> 20);
  }
  return r;
}

std::optional<ApiResponse> Api::precheck(RequestHead& head) {
  std::string_view path = path_of(head.target);
  Route r = route(path);
  if (r.endpoint == Endpoint::none) {
    return error_response(404, fmt::format("no such endpoint: {}", path.substr(0, 100)));
  }
  if (head.method != r.method) {
    ApiResponse resp = error_response(405, fmt::format("{} takes {} only", path, r.method));
    resp.allow = r.method;
    return resp;
  }
  // /healthz stays open so that load balancers need no secret (it shows
  // its details only to clients with a token). Batches take an agent's
  // token (which agents a credential may write as is the store's decision:
  // BatchStore, "Credentials"); reads take a read token.
  if (auto refused = refuse_unauthenticated(config_, r.endpoint, head)) return refused;
  if (r.endpoint != Endpoint::batches) {
    if (head.content_length.value_or(0) > 0) {
      return error_response(413, fmt::format("body: {} takes none", path));
    }
    return std::nullopt;
  }
  // Checked again by the decoder, but refusing here spares reading the body.
  if (!is_json_content_type(head.content_type) || !parse_content_encoding(head.content_encoding)) {
    auto decoded = decode_batch_request(head.content_type, head.content_encoding, {}, {});
    return error_response(415, std::get<Rejection>(decoded).message);
  }
  if (!head.has_length) {
    return error_response(411, "Content-Length (or chunked transfer coding) required");
  }
  if (head.content_length && *head.content_length > config_.limits.max_body_bytes) {
    return error_response(413, fmt::format("body: {} bytes, more than the limit of {}",
                                           *head.content_length, config_.limits.max_body_bytes));
  }
  // Admitted before the body is read, so a refused body costs no memory
  // (and a client that sent Expect: 100-continue does not send it at all).
  head.admission = budget_.admit(head.content_length.value_or(config_.limits.max_body_bytes));
  if (!head.admission) return busy();
  if (refusing_.exchange(false)) log::info("accepting batches again");
  return std::nullopt;
}

std::uint64_t Api::body_limit(const RequestHead& head) const {
  // A body on a GET endpoint would be read only to be thrown away.
  bool takes_body = route(path_of(head.target)).endpoint == Endpoint::batches;
  return takes_body ? config_.limits.max_body_bytes : 0;
}

void Api::set_credentials(std::shared_ptr<const Credentials> credentials) {
  if (config_.credentials && credentials) config_.credentials = std::move(credentials);
}

void Api::set_read_credentials(std::shared_ptr<const Credentials> credentials) {
  if (config_.read_credentials && credentials) config_.read_credentials = std::move(credentials);
}

void Api::handle(RequestHead& head, std::string body, Done done) {
  if (route(path_of(head.target)).endpoint == Endpoint::batches) {
    handle_batch(head, std::move(body), std::move(done));
  } else {
    handle_query(head, std::move(done));
  }
}

void Api::finish(Done done, ApiResponse response) noexcept {
  try {
    asio::post(io_, [done = std::move(done), response = std::move(response)]() mutable {
      done(std::move(response));
    });
  } catch (...) {
    // Out of memory even for the post: a pool thread must not die of it;
    // the connection times out instead.
  }
}

void Api::handle_batch(RequestHead& head, std::string body, Done done) {
  // Admitted by precheck() (a caller that skipped it is admitted here). A
  // chunked body was admitted at the body limit: now it has a size.
  IngestBudget::Ticket ticket = std::move(head.admission);
  if (!ticket) ticket = budget_.admit(body.size());
  if (!ticket || !ticket.resize(body.size())) return done(busy());
  // The guard keeps io_context::run() going while the request is away on
  // the worker threads and no socket operation is pending for it.
  asio::post(
      decode_pool_, [this, guard = asio::make_work_guard(io_), type = head.content_type,
                     encoding = head.content_encoding, credential = head.credential,
                     software = printable_prefix(head.user_agent, 64), body = std::move(body),
                     ticket = std::move(ticket), done = std::move(done)]() mutable {
        std::optional<BatchRequest> request;
        ApiResponse refused = guarded("decode batch", [&] {
          Decoded decoded = decode_batch_request(type, encoding, body, config_.limits);
          std::string().swap(body);  // the compressed body is no longer needed
          if (auto* rejected = std::get_if<Rejection>(&decoded)) {
            log::debug("rejected batch: {} {}", rejected->status, rejected->message);
            return error_response(rejected->status, rejected->message);
          }
          request = std::get<BatchRequest>(std::move(decoded));
          // Waiting for the writer, the decoded request is what takes memory.
          if (!ticket.resize(decoded_bytes(*request))) {
            request.reset();
            return busy();
          }
          return ApiResponse{};
        });
        if (!request) return finish(std::move(done), std::move(refused));
        request->software = std::move(software);
        asio::post(writer_, [this, guard = std::move(guard), request = std::move(*request),
                             credential = std::move(credential), ticket = std::move(ticket),
                             done = std::move(done)]() mutable {
          ApiResponse response = guarded("store batch", [&] { return store(request, credential); });
          finish(std::move(done), std::move(response));
        });
      });
}

ApiResponse Api::store(const BatchRequest& request, const std::optional<std::string>& credential) {
  auto outcome = batches_->store(request, credential);
  bool recovered = false;
  {
    std::lock_guard lock(health_mu_);
    if (!outcome.ok()) {
      // Log state changes only: the first failure, then the recovery.
      if (!write_failure_) log::warning("storing batches fails: {}", outcome.error().message());
      write_failure_ = outcome.error().message();
    } else if (write_failure_) {
      write_failure_.reset();
      recovered = true;
    }
  }
  if (recovered) log::info("storing batches works again");
  if (!outcome.ok()) return unavailable(outcome.error());
  switch (outcome->kind) {
    case StoreOutcome::Kind::stored:
      return ApiResponse{200, stored_json(outcome->stored, false)};
    case StoreOutcome::Kind::duplicate:
      return ApiResponse{200, stored_json(0, true)};
    case StoreOutcome::Kind::conflict:
      return error_response(409, outcome->why);
    case StoreOutcome::Kind::forbidden:
      // The bound credential's name goes to the log only.
      refusals_.note(fmt::format("refused a request: {} (it is bound to \"{}\")", outcome->why,
                                 outcome->bound_credential));
      return error_response(403, outcome->why);
    case StoreOutcome::Kind::unknown_processes:
      return ApiResponse{409, unknown_processes_json(*outcome)};
  }
  return error_response(500, "unreachable");
}

void Api::handle_query(const RequestHead& head, Done done) {
  Endpoint endpoint = route(path_of(head.target)).endpoint;
  if (endpoint == Endpoint::healthz) {
    // Details (which database, which failure) are for token holders; a
    // load balancer needs only the status.
    // Details (they name the database file and an agent) go to holders of
    // either kind of token, or to anyone when the collector has none.
    const bool details =
        (!config_.credentials && !config_.read_credentials) ||
        (config_.credentials && config_.credentials->authenticate(head.authorization)) ||
        (config_.read_credentials && config_.read_credentials->authenticate(head.authorization));
    asio::post(health_thread_, [this, guard = asio::make_work_guard(io_), details,
                                done = std::move(done)]() mutable {
      finish(std::move(done), guarded("health", [&] { return health(details); }));
    });
    return;
  }
  if (endpoint == Endpoint::page) return done(page(path_of(head.target)));
  std::string_view query = query_of(head.target);
  std::function<ApiResponse()> work;
  switch (endpoint) {
    case Endpoint::agents:
      work = [this] {
        auto agents = queries_->agents();
        return agents.ok() ? ApiResponse{200, agents_json(*agents)} : unavailable(agents.error());
      };
      break;
    case Endpoint::samples: {
      auto q = parse_sample_query(query);
      if (!q.ok()) return done(error_response(400, q.error().message()));
      work = [this, q = *q] {
        auto rows = queries_->samples(q);
        return rows.ok() ? ApiResponse{200, samples_json(*rows)} : unavailable(rows.error());
      };
      break;
    }
    case Endpoint::series: {
      auto r = parse_series_query(query, realtime_ns());
      if (!r.ok()) return done(error_response(400, r.error().message()));
      const bool csv = r->csv || head.accept.find("text/csv") != std::string::npos;
      work = [this, q = r->query, csv] {
        auto rows = queries_->series(q);
        if (!rows.ok()) return unavailable(rows.error());
        if (!csv) return ApiResponse{200, series_json(q, *rows)};
        ApiResponse resp{200, series_csv(*rows)};
        resp.content_type = "text/csv; charset=utf-8";
        return resp;
      };
      break;
    }
    default: {
      auto q = parse_top_query(query);
      if (!q.ok()) return done(error_response(400, q.error().message()));
      work = [this, q = *q] {
        auto top = queries_->top(q);
        return top.ok() ? ApiResponse{200, top_json(*top)} : unavailable(top.error());
      };
      break;
    }
  }
  // Queries run one at a time; past a queue this long, a client would wait
  // for minutes anyway.
  if (waiting_queries_ >= config_.max_waiting_queries) {
    ApiResponse r = error_response(
        503, fmt::format("{} queries are waiting already; retry later", waiting_queries_));
    r.retry_after = kBusyRetryAfter;
    return done(std::move(r));
  }
  ++waiting_queries_;
  asio::post(reader_, [this, guard = asio::make_work_guard(io_), work = std::move(work),
                       done = std::move(done)]() mutable {
    ApiResponse response = guarded("query", work);
    asio::post(io_, [this, done = std::move(done), response = std::move(response)]() mutable {
      --waiting_queries_;
      done(std::move(response));
    });
  });
}

void Api::start_housekeeping(std::chrono::milliseconds period) {
  housekeeping_period_ = period;
  housekeeping_stopped_ = false;
  housekeeping_timer_ = std::make_unique<asio::steady_timer>(io_);
  do_housekeep_later();
}

void Api::stop_housekeeping() {
  housekeeping_stopped_ = true;
  if (housekeeping_timer_) housekeeping_timer_->cancel();
}

void Api::do_housekeep_later() {
  housekeeping_timer_->expires_after(housekeeping_period_);
  housekeeping_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !housekeeping_stopped_) do_housekeep();
  });
}

// One step on the writer thread, queued behind the batches already there;
// the next is queued after it returns, so batches that arrive meanwhile go
// first.
void Api::do_housekeep() {
  asio::post(writer_, [this, guard = asio::make_work_guard(io_)] {
    bool more = false;
    try {
      auto stepped = batches_->housekeep();
      if (stepped.ok()) {
        more = *stepped;
      } else {
        housekeeping_failures_.note(fmt::format(
            "{}; tried again in {} ms", stepped.error().message(), housekeeping_period_.count()));
      }
      std::lock_guard lock(health_mu_);
      housekeeping_counts_ = batches_->housekeeping();
    } catch (const std::exception& e) {
      housekeeping_failures_.note(fmt::format("housekeeping: {}", e.what()));
    }
    try {
      asio::post(io_, [this, more] {
        if (housekeeping_stopped_) return;
        // Batches come first: while any is in the collector, the next step
        // waits (kHousekeepingYield), so that a burst is stored at full
        // speed and the sums follow when it has passed. Even when idle it
        // pauses between steps, so that the checkpointer finds the writer
        // free to start the WAL over.
        if (!more) return do_housekeep_later();
        housekeeping_timer_->expires_after(budget_.usage().requests == 0 ? kHousekeepingPause
                                                                         : kHousekeepingYield);
        housekeeping_timer_->async_wait([this](const boost::system::error_code& ec) {
          if (!ec && !housekeeping_stopped_) do_housekeep();
        });
      });
    } catch (...) {
      // Out of memory for the post: housekeeping stops until a restart,
      // which the next failure to store a batch will say more about.
    }
  });
}

ApiResponse Api::page(std::string_view path) {
  const WebAsset* asset = find_web_asset(path);
  if (asset == nullptr) return error_response(404, "no such page");
  ApiResponse r{200, std::string(asset->body)};
  r.content_type = std::string(asset->content_type);
  // Everything the page loads is its own: no other origin may script it,
  // frame it or receive its requests.
  r.headers = {{"Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               // The assets change only with the binary: revalidated each load.
               {"Cache-Control", "no-cache"}};
  return r;
}

ApiResponse Api::health(bool details) {
  Status readable = health_queries_->check();
  std::optional<std::string> failure;
  if (!readable.ok()) {
    failure = readable.error().message();
  } else {
    std::lock_guard lock(health_mu_);
    if (write_failure_) failure = "last write failed: " + *write_failure_;
  }
  HousekeepingCounts housekeeping;
  {
    std::lock_guard lock(health_mu_);
    housekeeping = housekeeping_counts_;
  }
  const HousekeepingCounts* shown = details ? &housekeeping : nullptr;
  if (!failure) return ApiResponse{200, health_json(true, nullptr, shown)};
  ApiResponse r{503, health_json(false, details ? &*failure : nullptr, shown)};
  r.retry_after = 5;
  return r;
}

}  // namespace tally::collector
