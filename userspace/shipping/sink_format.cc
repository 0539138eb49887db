#include "shipping/sink_format.h"

#include "shipping/gzip.h"

namespace tally::shipping {

Result<std::string> SinkFormat::compress(std::string_view body, int level) const {
  return gzip_compress(body, level);
}

Outcome SinkFormat::classify(long status) const {
  if (status >= 200 && status < 300) return Outcome::ack;
  if (status == 413) return Outcome::split;
  // 401/403: the credentials are wrong for now (a token being rotated),
  // which the operator fixes; the samples are still good.
  if (status == 401 || status == 403) return Outcome::retry;
  if (status == 408 || status == 429 || status >= 500) return Outcome::retry;
  if (status >= 400 && status < 500) return Outcome::reject;
  return Outcome::retry;
}

std::vector<std::string_view> split_lines(std::string_view payload) {
  std::vector<std::string_view> lines;
  while (!payload.empty()) {
    const auto nl = payload.find('\n');
    lines.push_back(payload.substr(0, nl));
    if (nl == std::string_view::npos) break;
    payload.remove_prefix(nl + 1);
  }
  return lines;
}

}  // namespace tally::shipping
