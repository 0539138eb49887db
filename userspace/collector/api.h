// The collector's endpoints (docs/protocol.md): which request goes where,
// the checks that can be made from the headers alone, and the work each
// endpoint does, on the thread it belongs to.
//
// Threads:
//   io thread      (the caller) routing, header checks, query-string parsing
//   decode pool    one thread per CPU: gzip inflate, JSON parse, validation
//   writer thread  the BatchStore, so database writes are serialized
//   query thread   the QueryStore, reads beside the writer (WAL)
// Completion callbacks always run on the io thread, so the HTTP layer needs
// no locks. Free of Beast: the session translates HTTP to RequestHead.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "batch_store.h"
#include "query_store.h"
#include "request_decoder.h"
#include "throttled_warning.h"
#include "token_auth.h"

namespace tally::collector {

struct RequestHead {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string content_type;
  std::string content_encoding;
  std::string authorization;
  // Set by precheck(): the credential of the request's token (nullopt
  // when the collector authenticates nobody).
  std::optional<std::string> credential;
  bool has_length = false;  // Content-Length or chunked
  std::optional<std::uint64_t> content_length;
};

struct ApiResponse {
  ApiResponse() = default;
  ApiResponse(unsigned s, std::string b) : status(s), body(std::move(b)) {}

  unsigned status = 200;
  std::string body;           // JSON
  unsigned retry_after = 0;   // seconds, for 503; 0: no header
  std::string allow;          // for 405
  bool authenticate = false;  // 401: add WWW-Authenticate
};

struct ApiConfig {
  // The tokens accepted and their credentials; null: no authentication.
  std::shared_ptr<const Credentials> credentials;
  DecodeLimits limits;
  unsigned decode_threads = 1;
};

class Api {
 public:
  using Done = std::function<void(ApiResponse)>;

  Api(boost::asio::io_context& io, std::unique_ptr<BatchStore> batches,
      std::unique_ptr<QueryStore> queries, ApiConfig config);
  ~Api();  // joins the worker threads

  // The response to send without reading the body (404, 405, 401, 411, 413,
  // 415), or nullopt when the body should be read and handle() called.
  // Sets head.credential.
  std::optional<ApiResponse> precheck(RequestHead& head) const;

  // The tokens accepted from now on (the token file was reloaded); io
  // thread, like precheck(). A request already past precheck() keeps the
  // credential it authenticated with. Only when the Api was created with
  // credentials: authentication is not switched on or off at run time.
  void set_credentials(std::shared_ptr<const Credentials> credentials);

  // The most body bytes the request's endpoint takes (as sent): the batch
  // limit for POST /v1/batches, 0 for the GET endpoints.
  std::uint64_t body_limit(const RequestHead& head) const;

  // Handles a request that passed precheck(); `done` runs on the io thread,
  // exactly once, even when the work throws (then with a 5xx).
  void handle(const RequestHead& head, std::string body, Done done);

  // Lets queued work finish and stops the worker threads. After the io
  // context has stopped running, before the stores are destroyed.
  void join();

 private:
  void handle_batch(const RequestHead& head, std::string body, Done done);
  void handle_query(const RequestHead& head, Done done);
  void finish(Done done, ApiResponse response);
  void fail(Done& done, std::string_view what) noexcept;  // in a catch block
  ApiResponse store(const BatchRequest& request,
                    const std::optional<std::string>& credential);  // writer thread
  ApiResponse health();                                            // query thread

  boost::asio::io_context& io_;
  std::unique_ptr<BatchStore> batches_;
  std::unique_ptr<QueryStore> queries_;
  ApiConfig config_;
  boost::asio::thread_pool decode_pool_;
  boost::asio::thread_pool writer_{1};
  boost::asio::thread_pool reader_{1};
  // Set by the writer when a write fails, cleared by the next success:
  // /healthz reports it, so a full disk shows before agents back up.
  std::mutex health_mu_;
  std::optional<std::string> write_failure_;
  ThrottledWarning refusals_{std::chrono::minutes(1)};  // writer thread
};

}  // namespace tally::collector
