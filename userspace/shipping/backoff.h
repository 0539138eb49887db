// When to try again after a failed delivery.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace tally::shipping {

struct BackoffPolicy {
  std::chrono::milliseconds base{1000};
  std::chrono::milliseconds cap{300'000};

  // Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)].
  // attempt counts the sink's consecutive failures so far, from 0. Full jitter spreads
  // a fleet's retries after a shared outage instead of synchronising them.
  std::chrono::milliseconds delay(std::uint32_t attempt, std::mt19937_64& rng) const;

  // The server's Retry-After, when given, wins over the computed delay but is
  // still bounded by the cap (a misconfigured server must not park us for days).
  std::chrono::milliseconds delay(std::uint32_t attempt, std::mt19937_64& rng,
                                  std::optional<std::chrono::milliseconds> retry_after) const;
};

// Parses a Retry-After header value: delay-seconds or an HTTP-date
// (RFC 9110 section 10.2.3). now_epoch_s anchors HTTP-dates; a date in the
// past means "now". nullopt when the value is neither.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::int64_t now_epoch_s);

}  // namespace tally::shipping
