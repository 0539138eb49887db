// Delivers one sink's batches from the outbox, in seq order, until each is
// acknowledged, rejected for good, or evicted by the outbox cap.
//
// Threads: each Shipper owns one thread that does all of its blocking work
// (HTTP requests, outbox calls). Other threads only call notify(),
// flush_now(), stop() and status(), which take the shipper's mutex briefly.
// Between attempts the thread sleeps on a condition variable until the next
// retry time or a notify(): no polling.
//
// Backoff is the sink's, not each batch's: after a failure nothing is sent to
// that sink until its retry time, whichever batch is pending, and the delay
// grows with the sink's consecutive failures. Why: with a delay per batch,
// every batch formed during an outage got its own first tries, so the
// requests to a server that is down grew with the backlog instead of easing
// off, a Retry-After held back only the batch it answered, and after
// recovery older batches sat out their own long delays while newer ones
// went. Batches go strictly in seq order.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "samples/compact_records.h"
#include "shipping/backoff.h"
#include "shipping/http_client.h"
#include "shipping/sink_format.h"
#include "tally/queue/outbox.h"

namespace tally::shipping {

struct ShipperOptions {
  std::string sink;  // outbox sink name
  std::string url;
  std::string agent_id;
  std::string bearer_token;  // empty: no Authorization header
  // base64 of "user:password" for HTTP basic auth, used when bearer_token is
  // empty; with basic_auth_from_reload, reload_token gives this instead.
  std::string basic_auth;
  bool basic_auth_from_reload = false;
  // Reads the token again (the sink's token file) when the server refuses
  // the credentials, so a rotated token is picked up without a restart.
  // Empty: the token never changes.
  std::function<Result<std::string>()> reload_token;
  // Called on the shipper's thread after each attempt (delivered, rejected
  // or failed), so that tallyd refreshes its status snapshot. Must not block.
  std::function<void()> on_progress;
  HttpClientOptions http;
  BackoffPolicy backoff;
  int gzip_level = 6;
};

// idle: nothing sent yet; healthy: the last request succeeded; failing: it
// did not, and the shipper is backing off.
enum class SinkState { idle, healthy, failing };
const char* sink_state_name(SinkState state);

// What `tally status` shows for a sink. Times are Unix epoch ns; 0 = never.
struct SinkStatus {
  std::string name;
  std::string format;
  std::string url;  // with credentials redacted (url_redaction.h)
  SinkState state = SinkState::idle;
  std::uint64_t last_success_ns = 0;
  std::string last_error;
  std::uint64_t last_error_ns = 0;
  std::uint32_t consecutive_failures = 0;
  std::uint64_t next_retry_ns = 0;  // 0 when not backing off
  std::uint64_t failing_since_ns = 0;
  std::uint64_t batches_sent = 0;
  std::uint64_t samples_sent = 0;
  std::uint64_t bytes_sent = 0;     // compressed bodies
  std::uint64_t bytes_encoded = 0;  // bodies before compression
  std::uint64_t batches_rejected = 0;
  std::uint64_t samples_rejected = 0;
  std::uint64_t requests_failed = 0;
  // Gap records this sink dealt with since start: samples declared lost to
  // it (outbox cap, rejections, failed appends). gaps_shipped says whether
  // its format carries them to the server (native) or they were only logged
  // and counted here (influx, otlp).
  bool gaps_shipped = true;
  std::uint64_t gap_records = 0;
  std::uint64_t gap_samples = 0;
  // Acknowledged requests in which the server said it dropped some points
  // (OTLP partial success), and how many points it dropped.
  // Bodies sent again in full because the server no longer held the process
  // names it had acknowledged (native format: a new collector database).
  std::uint64_t names_resent = 0;
  std::uint64_t partial_successes = 0;
  std::uint64_t points_rejected = 0;
  // Samples the format could not send to this server (SinkFormat::samples_withheld).
  std::uint64_t samples_withheld = 0;
  bool withholding = false;  // and still does
  // Samples the server refused for their age (remote write after a long
  // outage: "out of order", "out of bounds"), dead-lettered, and why.
  std::uint64_t old_samples_refused = 0;
  std::string old_data_reason;
  std::uint64_t old_data_refused_ns = 0;
};

class Shipper {
 public:
  // http: how requests go out; by default libcurl (HttpClient) with
  // options.http.
  Shipper(queue::Outbox& outbox, ShipperOptions options, std::unique_ptr<SinkFormat> format,
          std::unique_ptr<HttpPoster> http = nullptr);
  ~Shipper();  // stops and joins
  Shipper(const Shipper&) = delete;
  Shipper& operator=(const Shipper&) = delete;

  void start();
  // A batch was formed: look now.
  void notify();
  // Send everything pending now, ignoring backoff, until flush_until (steady)
  // passes. Used by `tally flush` and at shutdown.
  void flush_now(std::chrono::steady_clock::time_point until);
  // Finishes the request in flight (bounded by the HTTP timeout) and stops.
  void stop();

  SinkStatus status() const;
  const std::string& sink() const { return options_.sink; }

 private:
  enum class Step { delivered, nothing_ready, backing_off, error };
  using Piece = std::pair<std::uint32_t, std::uint32_t>;  // (first, count)

  // One batch on its way: its samples and the pieces still to send.
  struct Delivery {
    const queue::Batch& batch;
    std::uint64_t now_ns;
    std::vector<samples::Sample> samples;
    bool compact = false;  // stored as compact records
    std::deque<Piece> pieces;
    std::uint64_t samples_sent = 0;
    bool resent_in_full = false;  // the piece at the front was sent again in full
    std::uint32_t size() const { return static_cast<std::uint32_t>(samples.size()); }
  };

  void run();
  Step step();
  // deliver() and the steps it is made of, in the order they happen.
  Step deliver(const queue::Batch& batch, std::uint64_t now_ns);
  Step count_gap_locally(const queue::Batch& batch);
  Step set_aside_unreadable(const queue::Batch& batch, std::uint64_t now_ns,
                            const std::string& error, std::size_t records);
  Step send_pieces(Delivery& d);
  void on_acknowledged(Delivery& d, const Verdict& verdict);
  void on_resend_in_full(Delivery& d, const HttpResponse& response);
  Step on_retry(Delivery& d, const HttpResponse& response);
  void split_front(Delivery& d);
  std::optional<Step> on_rejected(Delivery& d, const HttpResponse& response, bool old_data);
  void count_old_data(const std::string& message, std::uint32_t count, std::uint64_t now);
  Step on_delivered(Delivery& d);
  // One HTTP request for samples [first, first + count) of the delivery.
  Result<HttpResponse> send(const Delivery& d, std::uint32_t first, std::uint32_t count);
  // What a dead letter holds of samples [first, first + count): their JSON
  // lines when the outbox stored compact records, else what it stored.
  std::string dead_letter_text(const Delivery& d, std::uint32_t first, std::uint32_t count) const;
  void backoff(const queue::Batch& batch, std::uint64_t now_ns, const std::string& error,
               std::optional<std::chrono::milliseconds> retry_after);
  void on_success(std::uint64_t now_ns);
  // After a 401 or 403: take the token file's current token, if it changed.
  void reload_token();
  bool flushing() const;

  queue::Outbox& outbox_;
  ShipperOptions options_;
  // options_.url as logs and status may show it: credentials redacted.
  const std::string shown_url_;
  std::unique_ptr<SinkFormat> format_;
  // Turns stored batches back into samples, with the outbox's dictionary.
  // Shipper thread only.
  samples::CompactDecoder decoder_;
  std::unique_ptr<HttpPoster> http_;
  std::mt19937_64 rng_;

  // Pieces still to send of a batch being split after a 413, kept across
  // retries so accepted pieces are not sent again (the server would drop
  // them as duplicates anyway).
  struct Split {
    std::uint64_t seq = 0;
    std::deque<Piece> pieces;
  };
  std::optional<Split> split_;
  // What the format last said it adapted to (SinkFormat::adapt_to), so each
  // reason is logged once. Shipper thread only.
  std::string last_adaptation_;
  // The last token reload error logged, so a missing file is logged once.
  // Shipper thread only.
  std::string last_token_error_;
  // Nothing is sent before this (Unix epoch ns) unless flushing; 0: no
  // backoff. Shipper thread only.
  std::uint64_t retry_at_ns_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::chrono::steady_clock::time_point flush_until_{};
  SinkStatus status_;
  std::thread thread_;
};

}  // namespace tally::shipping
