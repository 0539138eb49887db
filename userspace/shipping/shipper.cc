#include "shipping/shipper.h"

#include <algorithm>
#include <exception>

#include "samples/json_line.h"
#include "shipping/gzip.h"
#include "shipping/url_redaction.h"
#include "tally/log.h"
#include "tally/time_util.h"

namespace tally::shipping {

namespace {

constexpr std::uint64_t kErrorRetryNs = 5'000'000'000ULL;  // after an outbox error
constexpr auto kFlushRetry = std::chrono::milliseconds(250);
constexpr auto kMinPause = std::chrono::milliseconds(20);

std::string http_error(long status, const std::string& body) {
  std::string text = body.substr(0, 300);
  std::replace(text.begin(), text.end(), '\n', ' ');
  return fmt::format("HTTP {}{}{}", status, text.empty() ? "" : ": ", text);
}

}  // namespace

Shipper::Shipper(queue::Outbox& outbox, ShipperOptions options, std::unique_ptr<SinkFormat> format,
                 std::unique_ptr<HttpPoster> http)
    : outbox_(outbox),
      options_(std::move(options)),
      shown_url_(redact_url(options_.url)),
      format_(std::move(format)),
      decoder_([this](std::uint64_t key) { return outbox_.dictionary_entry(key); }),
      http_(http ? std::move(http) : std::make_unique<HttpClient>(options_.http)),
      rng_(std::random_device{}()) {
  status_.name = options_.sink;
  status_.format = std::string(format_->name());
  status_.url = shown_url_;
  status_.gaps_shipped = format_->sends_gaps();
}

Shipper::~Shipper() { stop(); }

void Shipper::start() {
  thread_ = std::thread([this] { run(); });
}

void Shipper::notify() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void Shipper::flush_now(std::chrono::steady_clock::time_point until) {
  {
    std::lock_guard lock(mu_);
    flush_until_ = until;
    wake_ = true;
  }
  cv_.notify_one();
}

void Shipper::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

SinkStatus Shipper::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

bool Shipper::flushing() const { return std::chrono::steady_clock::now() < flush_until_; }

void Shipper::run() {
  for (;;) {
    bool flush = false;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      wake_ = false;
      flush = flushing();
    }
    Step step_result = Step::error;
    try {
      step_result = step();
    } catch (const std::exception& e) {
      // A bug, or a sink's answer nobody foresaw: this thread must not end
      // tallyd. Retried after the outbox-error pause, never spun on.
      log::error("sink {}: delivering failed: {}; retrying", options_.sink, e.what());
    }
    if (step_result != Step::nothing_ready && options_.on_progress) options_.on_progress();
    if (step_result == Step::delivered) continue;

    // Sleep until the sink's retry time (a new batch does not cut it
    // short), a new batch when nothing is pending, or stop.
    std::optional<std::uint64_t> wake_at_ns;
    const std::uint64_t now = realtime_ns();
    if (step_result == Step::error) {
      wake_at_ns = now + kErrorRetryNs;
    } else if (step_result == Step::backing_off) {
      wake_at_ns = retry_at_ns_;
    }
    std::unique_lock lock(mu_);
    auto woken = [this] { return stop_ || wake_; };
    if (flush && step_result == Step::backing_off) {
      cv_.wait_for(lock, kFlushRetry, woken);
    } else if (!wake_at_ns) {
      cv_.wait(lock, woken);
    } else if (*wake_at_ns > now) {
      cv_.wait_for(lock, std::chrono::nanoseconds(*wake_at_ns - now), woken);
    } else {
      // Due already but nothing was ready a moment ago (the clock moved, or
      // the outbox disagrees with itself): retry soon, never spin.
      cv_.wait_for(lock, kMinPause, woken);
    }
  }
}

Shipper::Step Shipper::step() {
  const std::uint64_t now = realtime_ns();
  bool flush;
  {
    std::lock_guard lock(mu_);
    flush = flushing();
  }
  // A flush ignores the retry time. Otherwise nothing goes before it, and
  // then the lowest pending seq goes first, whatever its own retry time.
  if (!flush && now < retry_at_ns_) return Step::backing_off;
  auto next = outbox_.next_ready(options_.sink);
  if (!next.ok()) {
    log::warning("sink {}: {}", options_.sink, next.error().message());
    return Step::error;
  }
  if (!next->has_value()) return Step::nothing_ready;
  return deliver(**next, now);
}

Result<HttpResponse> Shipper::send(const Delivery& d, std::uint32_t first, std::uint32_t count) {
  auto body = format_->encode(d.batch, d.samples, first, count);
  if (!body.ok()) return body.error();
  auto compressed = format_->compress(*body, options_.gzip_level);
  if (!compressed.ok()) return compressed.error();

  std::vector<std::string> headers = format_->extra_headers();
  headers.push_back(fmt::format("Content-Type: {}", format_->content_type()));
  headers.push_back(fmt::format("Content-Encoding: {}", format_->content_encoding()));
  headers.push_back(
      first == 0 && count == d.size()
          ? fmt::format("Idempotency-Key: {}:{}", options_.agent_id, d.batch.seq)
          : fmt::format("Idempotency-Key: {}:{}:{}", options_.agent_id, d.batch.seq, first));
  if (!options_.bearer_token.empty()) {
    headers.push_back("Authorization: Bearer " + options_.bearer_token);
  } else if (!options_.basic_auth.empty()) {
    headers.push_back("Authorization: Basic " + options_.basic_auth);
  }
  auto response = http_->post(options_.url, *compressed, headers);
  std::lock_guard lock(mu_);
  status_.bytes_encoded += body->size();
  status_.bytes_sent += compressed->size();
  return response;
}

std::string Shipper::dead_letter_text(const Delivery& d, std::uint32_t first,
                                      std::uint32_t count) const {
  if (!d.compact) return {};
  std::string text;
  for (std::uint32_t i = first; i < first + count; ++i) {
    if (i != first) text += '\n';
    text += samples::to_json_line(d.samples[i]);
  }
  return text;
}

Shipper::Step Shipper::deliver(const queue::Batch& batch, std::uint64_t now) {
  const bool is_gap = batch.kind == queue::Batch::Kind::gap;
  if (is_gap && !format_->sends_gaps()) return count_gap_locally(batch);

  Delivery d{batch, now, {}, false, {}, 0, false};
  if (!is_gap) {
    const std::vector<std::string_view> records = split_lines(batch.payload);
    d.compact = std::any_of(records.begin(), records.end(), samples::is_compact_record);
    auto decoded = decoder_.decode(records);
    if (!decoded.ok()) {
      return set_aside_unreadable(batch, now, decoded.error().message(), records.size());
    }
    d.samples = std::move(*decoded);
  }
  if (split_ && split_->seq != batch.seq) split_.reset();
  if (split_) {
    d.pieces = split_->pieces;
  } else {
    d.pieces.emplace_back(0, d.size());
  }
  return send_pieces(d);
}

Shipper::Step Shipper::count_gap_locally(const queue::Batch& batch) {
  const std::uint64_t lost = batch.gap ? batch.gap->samples : 0;
  log::warning("sink {}: {} samples were lost ({}); this sink's format cannot carry the record",
               options_.sink, lost, batch.gap ? queue::gap_reason_name(batch.gap->reason) : "?");
  if (auto st = outbox_.ack(options_.sink, batch.seq); !st.ok()) return Step::error;
  std::lock_guard lock(mu_);
  ++status_.gap_records;
  status_.gap_samples += lost;
  return Step::delivered;
}

Shipper::Step Shipper::set_aside_unreadable(const queue::Batch& batch, std::uint64_t now,
                                            const std::string& error, std::size_t records) {
  // Only a damaged outbox gets here: set the batch aside, counted and
  // declared by a gap record, rather than block every batch after it.
  const std::string message = fmt::format("stored batch cannot be read: {}", error);
  log::error("sink {}: batch {}: {}; dead-lettered", options_.sink, batch.seq, message);
  if (auto st = outbox_.reject(options_.sink, batch.seq, 0, message, now); !st.ok()) {
    log::warning("sink {}: {}", options_.sink, st.error().message());
    return Step::error;
  }
  std::lock_guard lock(mu_);
  ++status_.batches_rejected;
  status_.samples_rejected += records;
  return Step::delivered;
}

Shipper::Step Shipper::send_pieces(Delivery& d) {
  const bool is_gap = d.batch.kind == queue::Batch::Kind::gap;
  while (!d.pieces.empty()) {
    const auto [first, count] = d.pieces.front();
    auto response = send(d, first, count);
    if (!response.ok()) {
      split_ = Split{d.batch.seq, d.pieces};
      backoff(d.batch, d.now_ns, response.error().message(), std::nullopt);
      return Step::backing_off;
    }
    const Verdict verdict = format_->judge(*response);
    switch (verdict.outcome) {
      case Outcome::ack:
        on_acknowledged(d, verdict);
        continue;
      case Outcome::resend_in_full:
        if (d.resent_in_full) break;  // a second time for the same piece: permanent
        on_resend_in_full(d, *response);
        continue;
      case Outcome::retry:
        return on_retry(d, *response);
      case Outcome::split:
        if (count <= 1 || is_gap) break;  // a single sample still too large: permanent
        split_front(d);
        continue;
      case Outcome::reject:
        break;
    }
    if (auto stop = on_rejected(d, *response, verdict.old_data)) return *stop;
  }
  return on_delivered(d);
}

void Shipper::on_acknowledged(Delivery& d, const Verdict& verdict) {
  const auto [first, count] = d.pieces.front();
  if (!verdict.warning.empty()) {
    // Acknowledged all the same: the protocol says a partial success must
    // not be retried, so the loss is logged and counted.
    log::warning("sink {}: batch {} samples {}..{}: {}", options_.sink, d.batch.seq, first,
                 first + count - 1, verdict.warning);
    std::lock_guard lock(mu_);
    ++status_.partial_successes;
    status_.points_rejected += verdict.rejected_points;
  }
  format_->acknowledged(d.samples, first, count);
  if (const std::uint64_t withheld = format_->samples_withheld(); withheld > 0) {
    std::lock_guard lock(mu_);
    status_.samples_withheld = withheld;
    status_.withholding = format_->withholding();
  }
  d.pieces.pop_front();
  d.resent_in_full = false;
  d.samples_sent += count;
}

void Shipper::on_resend_in_full(Delivery& d, const HttpResponse& response) {
  {
    std::lock_guard lock(mu_);
    ++status_.names_resent;
  }
  std::string what = format_->adapt_to(response);
  // Logged once per reason: a server that keeps forgetting (several
  // collectors behind one URL) would otherwise log every batch.
  if (what != last_adaptation_) {
    log::info("sink {}: {} ({}); batch {} sent again (counted as names_resent, logged once)",
              options_.sink, what, http_error(response.status, response.body), d.batch.seq);
    last_adaptation_ = std::move(what);
  }
  d.resent_in_full = true;
}

Shipper::Step Shipper::on_retry(Delivery& d, const HttpResponse& response) {
  split_ = Split{d.batch.seq, d.pieces};
  std::optional<std::chrono::milliseconds> retry_after;
  if (response.retry_after) {
    retry_after = parse_retry_after(*response.retry_after,
                                    static_cast<std::int64_t>(realtime_ns() / 1'000'000'000ULL));
  }
  // A refused credential is the operator's to fix (a rotated token, a
  // collector that bound this agent id to another token), not data to
  // drop: the batches wait, and the status says what to fix.
  const bool refused = response.status == 401 || response.status == 403;
  if (refused) reload_token();
  backoff(d.batch, d.now_ns,
          fmt::format("{} from {}{}", http_error(response.status, response.body), shown_url_,
                      refused ? "; the server refuses tally's credentials: check the sink's "
                                "token (its token_file is read again on each refusal)"
                              : ""),
          retry_after);
  return Step::backing_off;
}

void Shipper::split_front(Delivery& d) {
  // Halves keep their identity (seq, first index) so the server still
  // recognises samples it already has.
  const auto [first, count] = d.pieces.front();
  d.pieces.pop_front();
  d.resent_in_full = false;
  const std::uint32_t half = count / 2;
  d.pieces.emplace_front(first + half, count - half);
  d.pieces.emplace_front(first, half);
}

void Shipper::count_old_data(const std::string& message, std::uint32_t count, std::uint64_t now) {
  std::lock_guard lock(mu_);
  status_.old_samples_refused += count;
  status_.old_data_reason = message;
  status_.old_data_refused_ns = now;
}

std::optional<Shipper::Step> Shipper::on_rejected(Delivery& d, const HttpResponse& response,
                                                  bool old_data) {
  const auto [first, count] = d.pieces.front();
  const int code = static_cast<int>(response.status);
  const std::string message = http_error(response.status, response.body);
  const std::uint64_t seq = d.batch.seq;
  if (first == 0 && count == d.size()) {
    if (auto st = outbox_.reject(options_.sink, seq, code, message, d.now_ns,
                                 dead_letter_text(d, 0, count));
        !st.ok()) {
      log::warning("sink {}: {}", options_.sink, st.error().message());
      return Step::error;
    }
    format_->dead_lettered(d.samples, 0, count);
    log::warning("sink {}: batch {} rejected by {} ({}){}; dead-lettered, continuing with the next",
                 options_.sink, seq, shown_url_, message,
                 old_data ? " as too old for the server" : "");
    if (old_data) count_old_data(message, count, d.now_ns);
    std::lock_guard lock(mu_);
    ++status_.batches_rejected;
    status_.samples_rejected += count;
    split_.reset();
    return Step::delivered;
  }
  if (auto st = outbox_.reject_samples(options_.sink, seq, first, count, code, message, d.now_ns,
                                       dead_letter_text(d, first, count));
      !st.ok()) {
    split_ = Split{seq, d.pieces};
    log::warning("sink {}: {}", options_.sink, st.error().message());
    return Step::error;
  }
  format_->dead_lettered(d.samples, first, count);
  log::warning("sink {}: samples {}..{} of batch {} rejected ({}); dead-lettered", options_.sink,
               first, first + count - 1, seq, message);
  if (old_data) count_old_data(message, count, d.now_ns);
  {
    std::lock_guard lock(mu_);
    status_.samples_rejected += count;
  }
  d.pieces.pop_front();
  d.resent_in_full = false;
  return std::nullopt;
}

Shipper::Step Shipper::on_delivered(Delivery& d) {
  split_.reset();
  if (auto st = outbox_.ack(options_.sink, d.batch.seq); !st.ok()) {
    log::warning("sink {}: {}", options_.sink, st.error().message());
    return Step::error;
  }
  {
    std::lock_guard lock(mu_);
    ++status_.batches_sent;
    status_.samples_sent += d.samples_sent;
    if (d.batch.kind == queue::Batch::Kind::gap && d.batch.gap) {
      ++status_.gap_records;
      status_.gap_samples += d.batch.gap->samples;
    }
  }
  on_success(realtime_ns());
  return Step::delivered;
}

void Shipper::backoff(const queue::Batch& batch, std::uint64_t now, const std::string& error,
                      std::optional<std::chrono::milliseconds> retry_after) {
  std::uint32_t failures = 0;
  {
    std::lock_guard lock(mu_);
    failures = status_.consecutive_failures;
  }
  const auto delay = options_.backoff.delay(failures, rng_, retry_after);
  const std::uint64_t next = now + static_cast<std::uint64_t>(delay.count()) * 1'000'000ULL;
  retry_at_ns_ = next;
  // Recorded on the batch too, for `tally status`.
  if (auto st = outbox_.fail(options_.sink, batch.seq, error); !st.ok()) {
    log::warning("sink {}: {}", options_.sink, st.error().message());
  }
  std::lock_guard lock(mu_);
  const bool was_failing = status_.state == SinkState::failing;
  status_.state = SinkState::failing;
  status_.last_error = error;
  status_.last_error_ns = now;
  status_.next_retry_ns = next;
  ++status_.consecutive_failures;
  ++status_.requests_failed;
  if (!was_failing) {
    status_.failing_since_ns = now;
    // One line per state change, not per retry.
    log::warning("sink {}: delivery failing: {}; retrying with backoff, batches wait in the outbox",
                 options_.sink, error);
  }
}

void Shipper::reload_token() {
  if (!options_.reload_token) return;
  auto token = options_.reload_token();
  if (!token.ok()) {
    if (token.error().message() != last_token_error_) {
      last_token_error_ = token.error().message();
      log::warning("sink {}: reading the token again after a refusal: {}", options_.sink,
                   last_token_error_);
    }
    return;
  }
  last_token_error_.clear();
  if (options_.basic_auth_from_reload) {
    if (*token == options_.basic_auth) return;
    options_.basic_auth = std::move(*token);
    log::info("sink {}: the password file holds a new password; sending with it from now on",
              options_.sink);
    return;
  }
  if (*token == options_.bearer_token) return;
  options_.bearer_token = std::move(*token);
  log::info("sink {}: the token file holds a new token; sending with it from now on",
            options_.sink);
}

void Shipper::on_success(std::uint64_t now) {
  retry_at_ns_ = 0;
  std::lock_guard lock(mu_);
  if (status_.state == SinkState::failing) {
    log::info("sink {}: recovered after {} ({} failed attempts)", options_.sink,
              human_duration_ns(now - status_.failing_since_ns), status_.consecutive_failures);
  }
  status_.state = SinkState::healthy;
  status_.last_success_ns = now;
  status_.consecutive_failures = 0;
  status_.next_retry_ns = 0;
  status_.failing_since_ns = 0;
}

const char* sink_state_name(SinkState state) {
  switch (state) {
    case SinkState::idle:
      return "idle";
    case SinkState::healthy:
      return "healthy";
    case SinkState::failing:
      return "failing";
  }
  return "unknown";
}

}  // namespace tally::shipping
