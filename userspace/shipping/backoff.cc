#include "shipping/backoff.h"

#include <time.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "tally/parse_number.h"

namespace tally::shipping {

std::chrono::milliseconds BackoffPolicy::delay(std::uint32_t attempt, std::mt19937_64& rng) const {
  const std::uint64_t cap_ms = static_cast<std::uint64_t>(cap.count());
  std::uint64_t ceiling = static_cast<std::uint64_t>(base.count());
  for (std::uint32_t i = 0; i < attempt && ceiling < cap_ms; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, cap_ms);
  std::uniform_int_distribution<std::uint64_t> dist(0, ceiling);
  return std::chrono::milliseconds(dist(rng));
}

std::chrono::milliseconds BackoffPolicy::delay(
    std::uint32_t attempt, std::mt19937_64& rng,
    std::optional<std::chrono::milliseconds> retry_after) const {
  if (retry_after) return std::min(*retry_after, cap);
  return delay(attempt, rng);
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::int64_t now_epoch_s) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())))
    value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
    value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::isdigit(static_cast<unsigned char>(value.front()))) {
    std::uint64_t seconds = 0;
    if (!parse_decimal(value, seconds)) return std::nullopt;
    seconds = std::min<std::uint64_t>(seconds, 10ULL * 365 * 86400);
    return std::chrono::milliseconds(seconds * 1000);
  }
  // IMF-fixdate, the form servers must send: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::string text(value);
  tm parts{};
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  if (!end || *end != '\0') return std::nullopt;
  const std::int64_t when = timegm(&parts);
  if (when <= now_epoch_s) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds((when - now_epoch_s) * 1000);
}

}  // namespace tally::shipping
