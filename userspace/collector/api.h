// The collector's endpoints (docs/protocol.md): which request goes where,
// the checks that can be made from the headers alone, and the work each
// endpoint does, on the thread it belongs to.
//
// Threads:
//   io thread      (the caller) routing, header checks, query-string parsing
//   decode pool    one thread per CPU: gzip inflate, JSON parse, validation
//   writer thread  the BatchStore, so database writes are serialized
//   query thread   the QueryStore, reads beside the writer (WAL)
//   health thread  its own QueryStore: /healthz never waits behind a query
// Completion callbacks always run on the io thread, so the HTTP layer needs
// no locks. Free of Beast: the session translates HTTP to RequestHead.
//
// Bounds: batch requests are admitted into an IngestBudget before their
// body is read (503 + Retry-After when it is full), queries wait in a
// queue of bounded length (503 beyond it) and run under a time limit.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "collector/batch_store.h"
#include "collector/ingest_budget.h"
#include "collector/query_store.h"
#include "collector/request_decoder.h"
#include "collector/throttled_warning.h"
#include "collector/token_auth.h"

namespace tally::collector {

struct RequestHead {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as sent
  std::string content_type;
  std::string content_encoding;
  std::string authorization;
  std::string accept;
  std::string user_agent;
  // Set by precheck(): the credential of the request's token (nullopt
  // when the collector authenticates nobody).
  std::optional<std::string> credential;
  bool has_length = false;  // Content-Length or chunked
  std::optional<std::uint64_t> content_length;
  // Set by Api::precheck() for a batch it admits, taken by Api::handle();
  // dropped with the head when the body never arrives.
  IngestBudget::Ticket admission;
};

struct ApiResponse {
  ApiResponse() = default;
  ApiResponse(unsigned s, std::string b) : status(s), body(std::move(b)) {}

  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  // Further headers (Cache-Control, Content-Security-Policy...).
  std::vector<std::pair<std::string, std::string>> headers;
  unsigned retry_after = 0;   // seconds, for 503; 0: no header
  std::string allow;          // for 405
  bool authenticate = false;  // 401: add WWW-Authenticate
};

struct ApiConfig {
  // The tokens accepted for POST /v1/batches and their credentials; null:
  // no authentication.
  std::shared_ptr<const Credentials> credentials;
  // The tokens accepted for reads (every GET but /healthz); null: reads need
  // no token if open_reads, and are refused otherwise.
  std::shared_ptr<const Credentials> read_credentials;
  bool open_reads = true;
  DecodeLimits limits;
  unsigned decode_threads = 1;
  IngestBudget::Limits ingest;
  // Queries waiting for the query thread beyond which new ones get a 503.
  unsigned max_waiting_queries = 64;
};

class Api {
 public:
  using Done = std::function<void(ApiResponse)>;

  // `health` is a QueryStore of its own for /healthz, used on its own thread.
  Api(boost::asio::io_context& io, std::unique_ptr<BatchStore> batches,
      std::unique_ptr<QueryStore> queries, std::unique_ptr<QueryStore> health, ApiConfig config);
  ~Api();  // joins the worker threads

  // The response to send without reading the body (404, 405, 401, 411, 413,
  // 415, and 503 when the collector holds as much batch work as it may), or
  // nullopt when the body should be read and handle() called. Sets
  // head.credential; a batch request it lets through is admitted into
  // head.admission.
  std::optional<ApiResponse> precheck(RequestHead& head);

  // The tokens accepted from now on (the token file was reloaded); io
  // thread, like precheck(). A request already past precheck() keeps the
  // credential it authenticated with. Only when the Api was created with
  // credentials: authentication is not switched on or off at run time.
  void set_credentials(std::shared_ptr<const Credentials> credentials);
  void set_read_credentials(std::shared_ptr<const Credentials> credentials);

  // The most body bytes the request's endpoint takes (as sent): the batch
  // limit for POST /v1/batches, 0 for the GET endpoints.
  std::uint64_t body_limit(const RequestHead& head) const;

  // Handles a request that passed precheck(), taking head.admission;
  // `done` runs on the io thread, exactly once, even when the work throws
  // (then with a 5xx).
  void handle(RequestHead& head, std::string body, Done done);

  // Runs housekeeping (BatchStore::housekeep) on the writer thread every
  // `period`, and step after step while it has more to do, with batches
  // in between; io thread. stop_housekeeping() lets the io context run out.
  void start_housekeeping(std::chrono::milliseconds period);
  void stop_housekeeping();

  // Lets queued work finish and stops the worker threads. After the io
  // context has stopped running, before the stores are destroyed.
  void join();

 private:
  void handle_batch(RequestHead& head, std::string body, Done done);
  void handle_query(const RequestHead& head, Done done);
  void finish(Done done, ApiResponse response) noexcept;
  ApiResponse busy();
  ApiResponse store(const BatchRequest& request,
                    const std::optional<std::string>& credential);  // writer thread
  ApiResponse health(bool details);                                 // health thread
  ApiResponse page(std::string_view path);                          // io thread
  void do_housekeep_later();
  void do_housekeep();

  boost::asio::io_context& io_;
  std::unique_ptr<BatchStore> batches_;
  std::unique_ptr<QueryStore> queries_;
  std::unique_ptr<QueryStore> health_queries_;
  ApiConfig config_;
  IngestBudget budget_;
  unsigned waiting_queries_ = 0;  // io thread only
  boost::asio::thread_pool decode_pool_;
  boost::asio::thread_pool writer_{1};
  boost::asio::thread_pool reader_{1};
  boost::asio::thread_pool health_thread_{1};
  // Set by the writer when a write fails, cleared by the next success:
  // /healthz reports it, so a full disk shows before agents back up.
  std::mutex health_mu_;
  std::optional<std::string> write_failure_;
  ThrottledWarning refusals_{std::chrono::minutes(1)};  // writer thread
  // Housekeeping: the timer and flag on the io thread; the counts copied
  // under health_mu_ by the writer for /healthz.
  std::unique_ptr<boost::asio::steady_timer> housekeeping_timer_;
  std::chrono::milliseconds housekeeping_period_{1000};
  bool housekeeping_stopped_ = true;
  HousekeepingCounts housekeeping_counts_;
  ThrottledWarning housekeeping_failures_{std::chrono::minutes(10)};  // writer thread
  // Logged once per busy spell, not per refused request.
  std::atomic<bool> refusing_{false};
};

}  // namespace tally::collector
