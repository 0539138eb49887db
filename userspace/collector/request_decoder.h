// The whole decoding path of POST /v1/batches as one pure function: header
// checks, Content-Encoding, gzip inflate under a running limit, JSON parse
// and schema validation. No sockets, no database: the HTTP session calls it
// on a worker thread, the fuzz target (tests/collector/decode_fuzz.cc) calls
// it directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "collector/batch_request.h"
#include "collector/body_streambuf.h"

namespace tally::collector {

struct DecodeLimits {
  std::uint64_t max_body_bytes = 16u << 20;      // as sent (compressed)
  std::uint64_t max_decoded_bytes = 128u << 20;  // after Content-Encoding
};

// A request the collector refuses, with the HTTP status and the text of the
// response's "error" field.
struct Rejection {
  unsigned status;  // 400, 413 or 415 from the decoder
  std::string message;
};

using Decoded = std::variant<BatchRequest, Rejection>;

// "gzip", "x-gzip" (RFC 9110 section 8.4.1.3), "identity" and an absent or
// empty header are accepted, case-insensitively; anything else (including a
// list of codings) is nullopt.
std::optional<BodyEncoding> parse_content_encoding(std::string_view header);

// An absent Content-Type, or application/json with any parameters.
bool is_json_content_type(std::string_view header);

// Decodes one request body. Status precedence: 415 (headers), then 413
// (the body, or what it decodes to, passes a limit, whatever its content),
// then 400 (corrupt gzip, malformed JSON, schema). Never throws for any
// input; memory stays within about the size of the samples kept.
Decoded decode_batch_request(std::string_view content_type, std::string_view content_encoding,
                             std::string_view body, const DecodeLimits& limits);

}  // namespace tally::collector
