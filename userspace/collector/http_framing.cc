#include "collector/http_framing.h"

#include <new>
#include <stdexcept>
#include <string>

#include <fmt/format.h>
#include <boost/beast/http/error.hpp>

#include "collector/api_json.h"

namespace tally::collector {

namespace http = boost::beast::http;

namespace {

// The buffer filled up in a chunked body without the parser finding the end
// of what it waits for: either a chunk-size line, or, once the last chunk's
// line ("0", extensions, CRLF; RFC 9112 section 7.1) is complete, the trailer.
bool overflowed_in_trailer(std::string_view rest) {
  if (rest.substr(0, 2) == "\r\n") rest.remove_prefix(2);  // the end of the previous chunk
  std::size_t after_zeros = rest.find_first_not_of('0');
  if (after_zeros == 0 || after_zeros == std::string_view::npos) return false;
  char next = rest[after_zeros];
  bool last_chunk = next == ';' || next == '\r' || next == ' ' || next == '\t';
  return last_chunk && rest.find("\r\n") != std::string_view::npos;
}

ApiResponse failure(unsigned status, std::string_view message) {
  return ApiResponse{status, error_json(message)};
}

}  // namespace

std::optional<ApiResponse> framing_failure(const boost::beast::error_code& ec, ReadPhase phase,
                                           std::string_view unparsed, std::uint64_t body_limit) {
  if (ec == http::error::header_limit) {
    return failure(431, fmt::format("request header: more than {} bytes", kMaxHeaderBytes));
  }
  if (ec == http::error::buffer_overflow) {
    if (phase == ReadPhase::header) {
      return failure(431, fmt::format("request header: more than {} bytes", kMaxHeaderBytes));
    }
    if (overflowed_in_trailer(unparsed)) {
      return failure(431, fmt::format("chunked body: trailer section over {} bytes", kMaxBuffered));
    }
    return failure(400, fmt::format("chunked body: chunk-size line (with chunk extensions) over {} "
                                    "bytes",
                                    kMaxBuffered));
  }
  if (ec == http::error::body_limit) {
    if (body_limit == 0) return failure(413, "body: this endpoint takes none");
    return failure(413, fmt::format("body: more than the limit of {} bytes", body_limit));
  }
  // The peer left mid-message or between requests: nobody to answer.
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return std::nullopt;
  if (ec.category() == make_error_code(http::error::bad_method).category()) {
    return failure(400, "malformed HTTP request: " + ec.message());
  }
  return std::nullopt;  // a socket error or the timeout
}

ApiResponse parser_exception_response(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    ApiResponse r = failure(503, "collector out of memory reading the request");
    r.retry_after = 5;
    return r;
  }
  // basic_fields throws it for a field name or value over 65,535 bytes.
  if (dynamic_cast<const std::length_error*>(&e) != nullptr) {
    return failure(431, fmt::format("request field too large: {}", e.what()));
  }
  return failure(400, fmt::format("malformed HTTP request: {}", e.what()));
}

}  // namespace tally::collector
