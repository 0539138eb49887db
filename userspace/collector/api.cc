#include "api.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include "api_json.h"
#include "query_params.h"
#include "tally/log.h"
#include "token_auth.h"

namespace tally::collector {

namespace asio = boost::asio;

namespace {

enum class Endpoint { batches, agents, samples, top, healthz, none };

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
  if (path == "/healthz") return {Endpoint::healthz, "GET"};
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

}  // namespace

Api::Api(asio::io_context& io, std::unique_ptr<BatchStore> batches,
         std::unique_ptr<QueryStore> queries, ApiConfig config)
    : io_(io),
      batches_(std::move(batches)),
      queries_(std::move(queries)),
      config_(std::move(config)),
      decode_pool_(config_.decode_threads) {}

Api::~Api() { join(); }

void Api::join() {
  decode_pool_.join();
  writer_.join();
  reader_.join();
}

std::optional<ApiResponse> Api::precheck(RequestHead& head) const {
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
  // /healthz stays open so that load balancers need no secret. Every
  // other endpoint takes any valid token; which agents a credential may
  // write as is the store's decision (BatchStore, "Credentials").
  if (config_.credentials && r.endpoint != Endpoint::healthz) {
    head.credential = config_.credentials->authenticate(head.authorization);
    if (!head.credential) {
      ApiResponse resp = error_response(
          401, head.authorization.empty() ? "missing bearer token" : "invalid bearer token");
      resp.authenticate = true;
      return resp;
    }
  }
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

void Api::handle(const RequestHead& head, std::string body, Done done) {
  if (route(path_of(head.target)).endpoint == Endpoint::batches) {
    handle_batch(head, std::move(body), std::move(done));
  } else {
    handle_query(head, std::move(done));
  }
}

void Api::finish(Done done, ApiResponse response) {
  asio::post(io_, [done = std::move(done), response = std::move(response)]() mutable {
    done(std::move(response));
  });
}

// An exception escaping a pool thread would terminate the collector: the
// request gets a 5xx instead (503 when memory ran out, which may pass).
void Api::fail(Done& done, std::string_view what) noexcept {
  try {
    ApiResponse r;
    try {
      throw;
    } catch (const std::bad_alloc&) {
      log::warning("{}: out of memory", what);
      r = error_response(503, fmt::format("{}: collector out of memory", what));
      r.retry_after = 5;
    } catch (const std::exception& e) {
      log::error("{}: {}", what, e.what());
      r = error_response(500, fmt::format("{}: internal error", what));
    } catch (...) {
      log::error("{}: unknown exception", what);
      r = error_response(500, fmt::format("{}: internal error", what));
    }
    if (done) finish(std::move(done), std::move(r));
  } catch (...) {
    // Not even the answer could be posted: the connection times out.
  }
}

void Api::handle_batch(const RequestHead& head, std::string body, Done done) {
  // The guard keeps io_context::run() going while the request is away on
  // the worker threads and no socket operation is pending for it.
  asio::post(decode_pool_, [this, guard = asio::make_work_guard(io_), type = head.content_type,
                            encoding = head.content_encoding, credential = head.credential,
                            body = std::move(body), done = std::move(done)]() mutable {
    try {
      Decoded decoded = decode_batch_request(type, encoding, body, config_.limits);
      std::string().swap(body);  // the compressed body is no longer needed
      if (auto* rejected = std::get_if<Rejection>(&decoded)) {
        log::debug("rejected batch: {} {}", rejected->status, rejected->message);
        ApiResponse refusal = error_response(rejected->status, rejected->message);
        finish(std::move(done), std::move(refusal));
        return;
      }
      asio::post(writer_, [this, guard = std::move(guard),
                           request = std::get<BatchRequest>(std::move(decoded)),
                           credential = std::move(credential), done = std::move(done)]() mutable {
        try {
          // Computed before `done` moves into finish(), so fail() can still answer.
          ApiResponse stored = store(request, credential);
          finish(std::move(done), std::move(stored));
        } catch (...) {
          fail(done, "store batch");
        }
      });
    } catch (...) {
      fail(done, "decode batch");
    }
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
    case Endpoint::top: {
      auto q = parse_top_query(query);
      if (!q.ok()) return done(error_response(400, q.error().message()));
      work = [this, q = *q] {
        auto top = queries_->top(q);
        return top.ok() ? ApiResponse{200, top_json(*top)} : unavailable(top.error());
      };
      break;
    }
    default:
      work = [this] { return health(); };
      break;
  }
  asio::post(reader_, [this, guard = asio::make_work_guard(io_), work = std::move(work),
                       done = std::move(done)]() mutable {
    try {
      ApiResponse answer = work();
      finish(std::move(done), std::move(answer));
    } catch (...) {
      fail(done, "query");
    }
  });
}

ApiResponse Api::health() {
  Status readable = queries_->check();
  std::optional<std::string> failure;
  if (!readable.ok()) {
    failure = readable.error().message();
  } else {
    std::lock_guard lock(health_mu_);
    if (write_failure_) failure = "last write failed: " + *write_failure_;
  }
  if (!failure) return ApiResponse{200, health_json(nullptr)};
  ApiResponse r{503, health_json(&*failure)};
  r.retry_after = 5;
  return r;
}

}  // namespace tally::collector
