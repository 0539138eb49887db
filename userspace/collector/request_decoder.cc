#include "collector/request_decoder.h"

#include <algorithm>

#include <istream>
#include <new>

#include <fmt/format.h>

#include "collector/batch_parser.h"
#include "collector/tallyd_body.h"

namespace tally::collector {

namespace {

// Bodies that decode to at most this are parsed from memory.
constexpr std::uint64_t kParseInMemoryBytes = 4u << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Header values go into error messages: keep them short and printable.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 64) out += "...";
  return out;
}

}  // namespace

std::optional<BodyEncoding> parse_content_encoding(std::string_view header) {
  std::string_view v = trim(header);
  if (v.empty() || iequals(v, "identity")) return BodyEncoding::identity;
  if (iequals(v, "gzip") || iequals(v, "x-gzip")) return BodyEncoding::gzip;
  return std::nullopt;
}

bool is_json_content_type(std::string_view header) {
  std::string_view v = trim(header);
  if (v.empty()) return true;
  return iequals(trim(v.substr(0, v.find(';'))), "application/json");
}

Decoded decode_batch_request(std::string_view content_type, std::string_view content_encoding,
                             std::string_view body, const DecodeLimits& limits) {
  if (!is_json_content_type(content_type)) {
    return Rejection{415, fmt::format("Content-Type: expected application/json, got \"{}\"",
                                      shown(content_type))};
  }
  auto encoding = parse_content_encoding(content_encoding);
  if (!encoding) {
    return Rejection{415, fmt::format("Content-Encoding: unsupported \"{}\" (accepted: gzip, "
                                      "identity)",
                                      shown(content_encoding))};
  }
  if (body.size() > limits.max_body_bytes) {
    return Rejection{413, fmt::format("body: {} bytes, more than the limit of {}", body.size(),
                                      limits.max_body_bytes)};
  }
  try {
    // An ordinary body (a batch of 1,000 samples decodes to ~300 KiB) is
    // decoded whole and parsed from memory, which is faster; a larger one
    // is parsed as it is decoded, so that memory stays bounded whatever a
    // body decodes to.
    {
      BodyStreambuf whole(*encoding, body, std::min(kParseInMemoryBytes, limits.max_decoded_bytes));
      std::string text;
      char block[16384];
      for (std::streamsize n; (n = whole.sgetn(block, sizeof block)) > 0;) text.append(block, n);
      if (!whole.over_limit()) {
        if (whole.failure()) return Rejection{400, "body: " + *whole.failure()};
        if (auto fast = read_tallyd_body(text)) return std::move(*fast);
        Result<BatchRequest> parsed = parse_batch(std::string_view(text));
        if (!parsed.ok()) return Rejection{400, parsed.error().message()};
        return std::move(parsed).value();
      }
    }
    BodyStreambuf buf(*encoding, body, limits.max_decoded_bytes);
    std::istream in(&buf);
    Result<BatchRequest> parsed = parse_batch(in);
    // The parser stops at the first malformed byte; decode the rest so that a
    // body too large to accept is a 413 whatever its content (a zip bomb of
    // zeros is not valid JSON, but its size is the problem to report).
    if (!parsed.ok()) buf.drain();
    if (buf.over_limit()) {
      return Rejection{413, fmt::format("body: decodes to more than the limit of {} bytes",
                                        limits.max_decoded_bytes)};
    }
    if (buf.failure()) return Rejection{400, "body: " + *buf.failure()};
    if (!parsed.ok()) return Rejection{400, parsed.error().message()};
    return std::move(parsed).value();
  } catch (const std::bad_alloc&) {
    // Only a body near the limits on a machine short of memory gets here.
    return Rejection{413, "body: not enough memory to decode it"};
  }
}

}  // namespace tally::collector
