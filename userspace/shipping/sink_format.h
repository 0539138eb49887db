// The seam between "deliver batches reliably" (Shipper) and "what a given
// server expects on the wire" (one SinkFormat per protocol).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "samples/sample.h"
#include "shipping/http_client.h"
#include "tally/queue/batch.h"
#include "tally/result.h"

namespace tally::shipping {

// What the shipper does with a response.
enum class Outcome {
  ack,     // delivered
  retry,   // transient: back off and send the same bytes again
  split,   // too large: send the batch in smaller pieces
  reject,  // permanent: dead-letter it, carry on with the next batch
  // The server lacks state an earlier acknowledgement implied (the native
  // format's process names), or speaks an older protocol version: adapt
  // (SinkFormat::adapt_to) and send the piece again at once. A second time
  // for the same piece counts as reject.
  resend_in_full,
};

// A response judged: what to do, and what to tell the operator when the
// server accepted the request but not all of its data (OTLP partial success).
struct Verdict {
  Outcome outcome = Outcome::retry;
  std::uint64_t rejected_points = 0;  // points the server said it dropped
  std::string warning;                // non-empty: log it (once per request)
  // A rejection because of the samples' age (remote write "out of order",
  // "out of bounds" after a long outage): counted apart in `tally status`.
  bool old_data = false;
};

class SinkFormat {
 public:
  virtual ~SinkFormat() = default;

  virtual std::string_view name() const = 0;
  virtual std::string_view content_type() const = 0;
  // How bodies are compressed (Content-Encoding), and the compression.
  virtual std::string_view content_encoding() const { return "gzip"; }
  virtual Result<std::string> compress(std::string_view body, int level) const;
  // Headers the protocol wants beside Content-Type and Content-Encoding.
  virtual std::vector<std::string> extra_headers() const { return {}; }

  // The request body (before compression) for samples [first, first + count)
  // of a data batch, whose samples are given (decoded from the outbox), or
  // for a gap batch (samples empty).
  // The samples a body carries, and their identities, depend only on the
  // inputs; how much of each it spells out may also depend on what the
  // server acknowledged before (acknowledged() below).
  virtual Result<std::string> encode(const queue::Batch& batch,
                                     std::span<const samples::Sample> samples, std::uint32_t first,
                                     std::uint32_t count) const = 0;

  // The server acknowledged samples [first, first + count) of a data batch.
  virtual void acknowledged(std::span<const samples::Sample> /*samples*/, std::uint32_t /*first*/,
                            std::uint32_t /*count*/) {}
  // The server refused samples [first, first + count) for good: they are
  // dead-lettered. Formats that keep sums over batches still count them.
  virtual void dead_lettered(std::span<const samples::Sample> /*samples*/, std::uint32_t /*first*/,
                             std::uint32_t /*count*/) {}
  // The server answered resend_in_full (judge()): whatever acknowledged()
  // learned is no longer true, or the server needs an older form. Returns
  // what to tell the operator.
  virtual std::string adapt_to(const HttpResponse& /*response*/) { return {}; }

  // Samples of acknowledged pieces that the format left out because the
  // server cannot take them (native format: cgroup lines for a collector of
  // protocol version 2); reported in `tally status`.
  virtual std::uint64_t samples_withheld() const { return 0; }
  // Whether it is leaving samples out now (until it sees the server can
  // take them).
  virtual bool withholding() const { return false; }

  // False for servers that have no notion of a declared loss: gap batches are
  // then logged and acknowledged locally, and still counted in the outbox.
  virtual bool sends_gaps() const { return true; }

  // Default rules: 2xx ack; 413 split; 408, 429, 5xx retry; other 4xx
  // reject; anything else (1xx, 3xx) retry, since dropping data over a
  // redirect misconfiguration would be worse than waiting for a fix.
  virtual Outcome classify(long status) const;

  // The whole response; by default only its status counts (classify()).
  virtual Verdict judge(const HttpResponse& response) const {
    return Verdict{classify(response.status), 0, {}};
  }
};

// Splits a data batch's payload into its sample lines (views into payload).
std::vector<std::string_view> split_lines(std::string_view payload);

}  // namespace tally::shipping
